"""A module slow to import, as the download code is on a loaded machine: preloaded by a download
worker (`DownloadPool(preload=...)`), it keeps the worker starting for SLOW_IMPORT_S."""
import time

SLOW_IMPORT_S = 5.0

time.sleep(SLOW_IMPORT_S)
