"""Software-defined assets: index compositions and per-symbol daily, weekly and monthly bars."""
