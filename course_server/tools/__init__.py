"""What the course starts as separate programs.

``python -m course_server`` processes, and a throwaway ``redis-server``.
"""
