"""Sign-in: letting someone in, and knowing who is asking afterwards.

One module per step. The views (``views/``) are thin; the services under them never touch
``request``, except :mod:`second_step` (the client's IP, MAC and device cookie) and
:mod:`session` (the tokens a request carries). In the order a sign-in takes them:

    views/password.py    the sign-in form and POST /api/v1/auth/login; sign-out, refresh, password change
    ├── brake.py           per-account brake on password guesses (guess_counters.py: atomic slots)
    ├── password_step.py   the password (passwords.py: Argon2id hashes and the policy)
    └── second_step.py     a trusted device (devices.py, mac_addresses.py) needs no code; anything
                           else gets an emailed code (code_challenges.py)
    views/code.py        the code form and POST /api/v1/auth/verify|resend; a right code trusts the
                         device (second_step.finish)
    new_session.py       the new session's tokens (session_tokens.py), as cookies or as JSON
    session.py           every later request: who is asking (the pages and the API use it too)
    views/devices.py     the devices page
    clock.py             the time, injectable in tests

Nothing here imports the publications side (pages, api, publishing, access), the admin CLI or
the app factory (tests/portal/test_layout.py checks).
"""
