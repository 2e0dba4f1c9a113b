"""Task-agnostic training pieces shared by the classifier trainer (defenses)
and the denoiser trainer (denoise): checkpoints and learning-rate schedules."""
