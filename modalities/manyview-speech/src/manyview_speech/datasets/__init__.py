"""Speech datasets: spoken words synthesised offline, and folders of audio files."""
