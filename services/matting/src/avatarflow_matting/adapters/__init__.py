"""The matting service's edges: the person model behind the core's ``PersonSegmenter`` port."""
