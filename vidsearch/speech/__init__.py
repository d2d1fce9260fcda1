"""Speech: the sound of a video read at 16 kHz (audio), transcribed where someone speaks (transcribe), beside the
picture stages of an ingest (stage); and the `said` queries over the transcripts (query)."""
