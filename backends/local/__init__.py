"""The local backend: this machine through psutil and NVML, plus the SQLite store agents report into."""
