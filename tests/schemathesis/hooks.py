"""schemathesis hooks for tests/api_schemathesis.rs.

Every request authenticates as the bootstrap administrator `admin`. A generated request that
would set that user's password, change its roles or enabled flag, or delete it (schemathesis
learns the name from `GET users` and reuses it) would lock the rest of the run out, so such a
request is sent to a user of another name instead, which does not exist and answers 404. Every
other local user, server and setting stays fair game.
"""

import schemathesis

CALLER = "admin"
STAND_IN = "admin-stand-in"
CALLER_WRITES = {
    ("PUT", "/api/mgmt.local_users/1.0/users/{name}"),
    ("DELETE", "/api/mgmt.local_users/1.0/users/{name}"),
    ("PUT", "/api/mgmt.local_users/1.0/users/{name}/password"),
}


@schemathesis.hook
def before_call(context, case, kwargs):
    if (case.method.upper(), case.path) not in CALLER_WRITES:
        return
    parameters = case.path_parameters or {}
    if parameters.get("name") == CALLER:
        parameters["name"] = STAND_IN
        case.path_parameters = parameters
