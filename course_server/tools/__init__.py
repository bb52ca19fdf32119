"""What the course starts as separate programs.

``python -m course_server`` processes, a throwaway ``redis-server``, and a local cluster of both
behind nginx (``cluster``).
"""
