"""Training the emotion model on FER2013: data, augmentation (and video-like degradations), distillation,
the epoch loop, checkpoints and the run (``fer-video train``). Inference never imports this package."""
