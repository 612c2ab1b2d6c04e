"""``nbpress worker``: runs that users ask for on the portal, run here through the normal pipeline.

    claim_loop       start (profiles to the portal), claim, run, repeat; signals
    served_request   one claimed request: check its values, run, publish, tell the portal
    lease_keeper     the request's lease renewed every third of it, its stage, the portal's cancel

(Not ``worker``: the portal has a module of that name, and the two packages share no names.)
Nothing is imported here.
"""
