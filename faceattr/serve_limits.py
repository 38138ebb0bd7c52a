"""The server's limits when ``faceattr serve`` is not told otherwise (--max-upload-mb, --timeout,
--upload-timeout): one home for the server and the command line, whose --help states them (this
module imports nothing, so --help stays quick)."""

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
TIMEOUT_S = 30.0  # seconds a request may take (504)
UPLOAD_TIMEOUT_S = 30.0  # seconds a client may take to send its upload (408)
