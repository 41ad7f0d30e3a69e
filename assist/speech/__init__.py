"""Speech: priority arbiter, TTS backends, earcons and WAV rendering."""
