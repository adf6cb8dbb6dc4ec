"""What every stage shares: the one image preprocessing, the model file, the foreground
(framing) model's file and segmenter, meshes, metrics, config flags and the device."""
