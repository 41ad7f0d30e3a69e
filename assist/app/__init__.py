"""App: the command line on top of the runtime.

``cli`` parses the flags, loads the config and starts a run
(``python run.py``); ``image_command`` is ``--image`` (caption one photo,
list its hazards, exit); ``exitcodes`` are the documented exit codes and
``errors`` the one table that maps each stage's errors to them. Only this
package knows exit codes.
"""
