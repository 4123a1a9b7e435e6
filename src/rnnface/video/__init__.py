"""Video: read files and live streams, track faces across frames, recognize each track as a whole."""
