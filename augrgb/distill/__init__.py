"""Stage 2: train a teacher stream and the Augmented-RGB student with cross-modal knowledge distillation."""
