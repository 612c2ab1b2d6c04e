"""Sign-in: letting someone in (password, then a trusted device or an emailed code) and knowing
who is asking afterwards. One module per step; the views are thin and the services below them
never touch ``request`` (except :mod:`second_step`, which reads the client's IP, MAC and device
cookie, and :mod:`session`, which reads the tokens).

    views/password.py    the sign-in form and POST /api/v1/auth/login; sign-out, refresh, password change
      brake.py             per-account brake on password guesses (guess_counters.py: atomic slots)
      password_step.py     the password (passwords.py: Argon2id hashes and the policy)
      second_step.py       a trusted device (devices.py, mac_addresses.py) skips the code;
                           anything else gets an emailed code (code_challenges.py)
    views/code.py        the code form and POST /api/v1/auth/verify|resend
      new_session.py       the new session's tokens (session_tokens.py): cookies or JSON
    session.py           on every later request: who is asking (pages and the API use it too)
    views/devices.py     the devices page
    clock.py             the time, injectable in tests

Nothing here imports the publications side (pages, api, publishing, access) or the admin CLI.
"""
