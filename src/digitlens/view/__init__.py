"""What people see: the web page's server and static files (and figures for notebooks and the CLI).

Nothing here computes: views receive numbers from the library and draw them.
"""
