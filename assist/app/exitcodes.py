"""Documented exit codes (README, "When things go wrong")."""

OK = 0  # success, end of input, or stopped by Ctrl-C / SIGTERM
USAGE = 2  # bad command line or config
SOURCE = 3  # the source (camera, file, folder, URL, image) cannot be opened
MODEL = 4  # a required model cannot be found or loaded (the message says how to get it)
INTERNAL = 70  # an unexpected internal error (a bug: please report it with the log)
