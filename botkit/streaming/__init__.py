"""Showing a reply while the model writes it: the streamer, the shared edit budget, splitting."""
