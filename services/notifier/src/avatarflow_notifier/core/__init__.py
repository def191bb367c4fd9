"""The notifier's pure core: how events change an upload's status and what a space shows
(``status``), and the pre-generated avatars' drawings (``illustrations``). No I/O, no environment,
no process-global state: every rule is a function of values, so it is tested without a database."""
