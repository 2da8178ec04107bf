"""schemathesis hooks for tests/api_schemathesis.rs.

Every request authenticates as the bootstrap administrator `admin`. A generated request that
would set that user's password, change its roles or enabled flag, or delete it (schemathesis
learns the name from `GET users` and reuses it) would lock the rest of the run out, so such a
request is sent to a user of another name instead, which does not exist and answers 404. A new
MFA policy always exempts that user, or HTTP Basic would stop working for it. Every other local
user, server and setting stays fair game.
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
    keep_caller_exempt(case)
    if (case.method.upper(), case.path) not in CALLER_WRITES:
        return
    parameters = case.path_parameters or {}
    if parameters.get("name") == CALLER:
        parameters["name"] = STAND_IN
        case.path_parameters = parameters


# The MFA policy: a generated policy that made the caller owe a second factor would lock the
# rest of the run out of HTTP Basic, so the caller is added to every policy's exempt users.
POLICY = ("POST", "/api/mfa/1.0/policy")


def exempt_caller(policy):
    if not isinstance(policy, dict):
        return
    users = policy.setdefault("exempt_users", [])
    if isinstance(users, list) and CALLER not in users:
        users.append(CALLER)


def keep_caller_exempt(case):
    if (case.method.upper(), case.path) != POLICY or not isinstance(case.body, dict):
        return
    exempt_caller(case.body)
    applications = case.body.get("applications")
    if isinstance(applications, list):
        for application in applications:
            exempt_caller(application)
