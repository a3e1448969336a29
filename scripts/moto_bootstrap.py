#!/usr/bin/env python3
"""Create SQS credentials in a moto_server that enforces SigV4, then prove it.

Run with the test venv's python (it needs boto3), against a moto_server that
was started with INITIAL_NO_AUTH_ACTION_COUNT=FREE_ACTIONS:

    .venv/bin/python scripts/moto_bootstrap.py --endpoint http://127.0.0.1:PORT \
        --env-out .test-servers/moto.env

How moto 5 counts (moto/core/authorization.py, ActionAuthenticatorMixin):
a process-wide counter ``request_count`` starts at 0. Every request that is
dispatched to a service action (BaseResponse.call_action, any service, any
region, signed or not) first checks ``request_count >= INITIAL_NO_AUTH_ACTION_COUNT``.
While that is false the request is let through WITHOUT looking at the
Authorization header at all and the counter is incremented; once it is true,
every later action request must carry a valid SigV4 signature from an access
key that exists in moto's IAM, and the key's IAM policies must allow the action.
Requests to /moto-api/* are not service actions and neither count nor are
checked. A failed action (e.g. a 4xx from CreateUser) still used up its free
slot, which is why botocore retries are switched off below.

The user's policy allows sqs:* and s3:* (the S3 client's tests create their
own buckets), plus the IAM calls of the role set-up below.

So exactly FREE_ACTIONS = 3 action calls are free, and they are these:
iam:CreateUser, iam:PutUserPolicy, iam:CreateAccessKey. The 4th action request
the server sees (sqs:ListQueues signed with a wrong secret) must already be
rejected; that catches a count that is too large, and a count that is too
small makes CreateAccessKey fail.

After bootstrapping, the script proves that auth is enforced and exits non-zero
if it is not, over both the query protocol (form POST, what sqs-archive sends
to moto; checked with raw botocore-signed requests) and boto3's JSON protocol:
  * sqs:ListQueues signed with the new key succeeds,
  * the same call signed with a wrong secret fails: HTTP 403 SignatureDoesNotMatch,
  * the same call signed with an unknown key id fails: HTTP 403 InvalidClientTokenId,
  * the same call with no Authorization header at all does not succeed (moto
    5.2 answers it with HTTP 500: IAMRequest reads headers["Authorization"]
    and the KeyError escapes as an HTML "Internal Server Error" page).

Then, signed with the new key (its policy allows exactly these IAM calls),
it sets up what the credential tests assume roles with:
  * role sqs-archive-it-role, whose inline policy allows sqs:*,
  * user sqs-archive-it-assumer, allowed only sts:AssumeRole, and its key,
and proves that the assumer's own key is refused by SQS while the keys of the
role it assumes are accepted. A send that succeeds with a profile whose source
is the assumer therefore proves that the role's keys signed it.

Output: shell assignments (KEY='value') for the key id, secret, region and
endpoint, the role ARN and the assumer's key, written to --env-out (mode 600)
if given, else to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore.exceptions
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

FREE_ACTIONS = 3
USER_NAME = "sqs-archive-it"
POLICY_NAME = "sqs-archive-it-sqs-all"
POLICY_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
        # The S3 client's tests (tests/it/s3.rs) create their own buckets.
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        # Only for the role set-up below.
        {"Effect": "Allow", "Action": ["iam:CreateRole", "iam:PutRolePolicy", "iam:CreateUser",
                                       "iam:PutUserPolicy", "iam:CreateAccessKey"],
         "Resource": "*"},
    ],
}
ROLE_NAME = "sqs-archive-it-role"
ASSUMER_NAME = "sqs-archive-it-assumer"
ACCOUNT_ID = "123456789012"


def fail(msg: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    print(f"moto_bootstrap: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def client(service: str, endpoint: str, region: str, key_id: str, secret: str):
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(
            # Each attempt would consume one of the FREE_ACTIONS unauthenticated
            # slots, so never retry.
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        ),
    )


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def signed_query(endpoint: str, region: str, key_id: str, secret: str,
                 params: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """POST an SQS query-protocol (form-encoded) request, SigV4-signed with
    botocore's signer, and return (status, headers, body)."""
    body = urllib.parse.urlencode(params)
    req = AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    })
    SigV4Auth(Credentials(key_id, secret), "sqs", region).add_auth(req)
    prepared = req.prepare()
    http_req = urllib.request.Request(prepared.url, data=body.encode(),
                                      headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http_req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def expect_rejected(endpoint: str, region: str, key_id: str, secret: str,
                    expected_code: str, what: str) -> None:
    # Query protocol (what sqs-archive sends to moto): exact status and code.
    status, _, body = signed_query(endpoint, region, key_id, secret,
                                   {"Action": "ListQueues", "Version": "2012-11-05"})
    if status == 200:
        fail(f"{what}: query-protocol ListQueues SUCCEEDED - moto is not enforcing "
             f"signatures (is INITIAL_NO_AUTH_ACTION_COUNT={FREE_ACTIONS} set for moto_server?)")
    if status != 403 or f"<Code>{expected_code}</Code>" not in body:
        fail(f"{what}: expected HTTP 403 {expected_code}, got HTTP {status}: {body[:500]}")
    # JSON protocol (boto3's default for SQS): moto answers auth failures with
    # the same XML body, which botocore cannot parse, so only check the status.
    sqs = client("sqs", endpoint, region, key_id, secret)
    try:
        sqs.list_queues()
    except botocore.exceptions.ClientError as exc:
        status_json = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status_json != 403:
            fail(f"{what}: JSON-protocol ListQueues: expected HTTP 403, got {status_json}: {exc}")
    else:
        fail(f"{what}: JSON-protocol ListQueues SUCCEEDED - moto is not enforcing signatures")
    print(f"moto_bootstrap: ok: {what} rejected with HTTP 403 {expected_code}", file=sys.stderr)


def set_up_role(endpoint: str, region: str, key_id: str, secret: str) -> tuple[str, str, str]:
    """A role allowed sqs:*, a user allowed only sts:AssumeRole; proves which key SQS accepts."""
    iam = client("iam", endpoint, region, key_id, secret)
    try:
        assumer_arn = iam.create_user(UserName=ASSUMER_NAME)["User"]["Arn"]
        role_arn = iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"AWS": assumer_arn}}],
            }),
        )["Role"]["Arn"]
        iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="sqs-all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}))
        iam.put_user_policy(UserName=ASSUMER_NAME, PolicyName="assume-only", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}))
        assumer = iam.create_access_key(UserName=ASSUMER_NAME)["AccessKey"]
    except botocore.exceptions.ClientError as exc:
        fail(f"role set-up failed ({error_code(exc)}): {exc}")
    assumer_id, assumer_secret = assumer["AccessKeyId"], assumer["SecretAccessKey"]

    status, _, body = signed_query(endpoint, region, assumer_id, assumer_secret,
                                   {"Action": "ListQueues", "Version": "2012-11-05"})
    if status != 403:
        fail(f"the assume-only user's own key was not refused by SQS: HTTP {status}: {body[:300]}")
    sts = client("sts", endpoint, region, assumer_id, assumer_secret)
    try:
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="bootstrap")["Credentials"]
        boto3.session.Session().client(
            "sqs", endpoint_url=endpoint, region_name=region,
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        ).list_queues()
    except botocore.exceptions.ClientError as exc:
        fail(f"the assumed role's keys were refused ({error_code(exc)}): {exc}")
    print(f"moto_bootstrap: ok: {ASSUMER_NAME} is refused by SQS (HTTP 403) and its role "
          f"{role_arn} is accepted", file=sys.stderr)
    return role_arn, assumer_id, assumer_secret


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True, help="moto_server URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--env-out", help="write shell assignments here (mode 600) instead of stdout")
    ap.add_argument("--prefix", default="SQS_ARCHIVE_IT_MOTO_", help="variable name prefix")
    args = ap.parse_args()

    # 1-3: the only unauthenticated calls. The bootstrap credentials are
    # arbitrary: moto does not look at them while the free count lasts.
    iam = client("iam", args.endpoint, args.region, "bootstrap", "bootstrap")
    try:
        iam.create_user(UserName=USER_NAME)  # free action 1
        iam.put_user_policy(  # free action 2
            UserName=USER_NAME,
            PolicyName=POLICY_NAME,
            PolicyDocument=json.dumps(POLICY_DOCUMENT),
        )
        key = iam.create_access_key(UserName=USER_NAME)["AccessKey"]  # free action 3
    except botocore.exceptions.ClientError as exc:
        fail(f"IAM bootstrap call failed ({error_code(exc)}): {exc}. moto must be fresh "
             f"and started with INITIAL_NO_AUTH_ACTION_COUNT={FREE_ACTIONS}; if this is "
             f"InvalidClientTokenId/SignatureDoesNotMatch the free actions were already used")
    key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]

    # 4-7: wrong secret / unknown key id: must be rejected. The wrong-secret call
    # is deliberately the first action after the free ones: if moto had been
    # started with a larger INITIAL_NO_AUTH_ACTION_COUNT it would succeed and
    # we fail here instead of handing out a "protected" server that is not.
    expect_rejected(args.endpoint, args.region, key_id, secret + "x",
                    "SignatureDoesNotMatch", "wrong secret")
    expect_rejected(args.endpoint, args.region, "AKIAUNKNOWNKEY000000", secret,
                    "InvalidClientTokenId", "unknown access key id")

    # 8: no signature at all: must not succeed.
    req = urllib.request.Request(args.endpoint + "/", method="POST",
                                 data=b"Action=ListQueues&Version=2012-11-05", headers={
                                     "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            fail(f"unsigned ListQueues SUCCEEDED (HTTP {resp.status}) - moto is not "
                 f"enforcing signatures")
    except urllib.error.HTTPError as err:
        print(f"moto_bootstrap: ok: unsigned request rejected with HTTP {err.code}",
              file=sys.stderr)

    # 9-10: signed with the new key, both protocols: must work.
    status, _, body = signed_query(args.endpoint, args.region, key_id, secret,
                                   {"Action": "ListQueues", "Version": "2012-11-05"})
    if status != 200 or "<ListQueuesResponse" not in body:
        fail(f"query-protocol ListQueues signed with the new key: HTTP {status}: {body[:500]}")
    try:
        client("sqs", args.endpoint, args.region, key_id, secret).list_queues()
    except botocore.exceptions.ClientError as exc:
        fail(f"JSON-protocol ListQueues signed with the new key failed ({error_code(exc)}): {exc}")
    print("moto_bootstrap: ok: ListQueues signed with the new key succeeded "
          "(query and JSON protocol)", file=sys.stderr)

    role_arn, assumer_id, assumer_secret = set_up_role(args.endpoint, args.region, key_id, secret)

    values = {
        "URL": args.endpoint,
        "ACCESS_KEY_ID": key_id,
        "SECRET_ACCESS_KEY": secret,
        "REGION": args.region,
        "ROLE_ARN": role_arn,
        "ASSUMER_ACCESS_KEY_ID": assumer_id,
        "ASSUMER_SECRET_ACCESS_KEY": assumer_secret,
    }
    text = "".join(f"{args.prefix}{k}={shlex.quote(v)}\n" for k, v in values.items())
    if args.env_out:
        fd = os.open(args.env_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(args.env_out, 0o600)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
