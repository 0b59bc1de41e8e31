"""Use cases of the program. Each public function takes a Session and plain values,
validates its input, runs as one transaction (see :func:`app.services.base.transactional`)
and returns a frozen result describing what changed."""
