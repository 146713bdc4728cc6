"""Speech recipes: supervised-contrastive classification and audio-text contrastive training."""
