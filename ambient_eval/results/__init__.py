"""What a command leaves behind and how results are compared: the results.json envelope (`envelope`), the
per-metric comparability rule (`comparability`) and the run-history database (`history`)."""
