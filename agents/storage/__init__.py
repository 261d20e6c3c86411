"""What a run leaves on disk: safe file writing, the run folder's settings and status, the model and its statistics."""
