"""The validator's edges: the face models behind the core's ``FaceAnalyzer`` port."""
