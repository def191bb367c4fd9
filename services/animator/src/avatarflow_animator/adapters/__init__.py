"""The animator's edges: what the core's ports are implemented with.

``onnx_graph`` builds the warp graph and ``onnx_renderer`` runs it on onnxruntime (the renderer
port); ``pyav_encoder`` writes the WebM/MP4/PNG files with PyAV and Pillow (the encoder port);
``espeak`` drives Debian's espeak-ng through ``espeak_worker`` in a short-lived subprocess (the
speech port). Nothing is imported here, so importing one adapter does not load the others'
libraries.
"""
