"""Real-time Python with FastAPI: the server every lesson starts and drives.

``create_app(settings)`` builds the app; ``start()`` serves it from a background thread.
"""

from course_server.app import create_app
from course_server.runner import RunningServer, start, stop, stop_all
from course_server.settings import Settings

__all__ = ["RunningServer", "Settings", "create_app", "start", "stop", "stop_all"]
__version__ = "0.1.0"
