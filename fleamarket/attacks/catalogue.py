"""What is attacked, with what: the attack catalogue and the mechanism profiles.

An *attack* is one thing an attacker tries; a *profile* is one way a caller
authenticates to UserService (the mechanism, or the combination the deployment uses).
Every (profile, attack) cell is run live by :mod:`fleamarket.attacks.runner`, or is not
applicable. A profile names the attacks it is *expected* to lose (``expected_accept``):
"trust the network" against impersonation, a plain bearer token against theft. Every
other applicable cell must be refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attack:
    id: str
    title: str
    description: str


@dataclass(frozen=True)
class Profile:
    id: str
    title: str
    description: str
    #: Attacks this mechanism cannot stop by design: shown as accepted, EXPECTED.
    expected_accept: dict[str, str] = field(default_factory=dict)
    #: The deployment's default configuration: must refuse every applicable attack.
    default: bool = False


ATTACKS: tuple[Attack, ...] = (
    Attack("no_credentials", "No credentials", "A request without any credential."),
    Attack(
        "impersonate_key",
        "Impersonation: wrong certificate / key",
        "The attacker (a registered service, `intruder`, without scopes) presents the "
        "victim's public certificate or key id but signs with its own key.",
    ),
    Attack(
        "impersonate_claim",
        "Impersonation: wrong `sub` / identity claim",
        "The attacker signs with its own valid key but claims to be the victim (`ads`).",
    ),
    Attack(
        "rogue_ca",
        "Certificate from a rogue CA",
        "A certificate for `ads` (same trust domain) issued by a CA nobody trusts; for "
        "access tokens, a token signed by a key the issuer never published.",
    ),
    Attack("expired_cert", "Expired certificate", "A certificate of our CA that has expired."),
    Attack(
        "revoked_cert",
        "Revoked certificate",
        "A certificate (and what was bound to it) used after it was revoked (CRL).",
    ),
    Attack(
        "stolen_replay",
        "Stolen credential replayed without the victim's certificate",
        "A credential the victim sent (read from a log or a compromised proxy after the "
        "call) replayed from another machine that lacks the victim's certificate.",
    ),
    Attack(
        "intercepted_unused",
        "Credential intercepted before use",
        "A credential taken before the victim used it, sent first from another machine "
        "without the victim's certificate.",
    ),
    Attack(
        "replay",
        "Replayed signed request / JWT (`jti` / nonce reuse)",
        "The exact request sent a second time, over the victim's own channel where it has "
        "one (a middlebox replaying).",
    ),
    Attack(
        "replay_workers",
        "Replay across worker processes",
        "One credential sent 12 times at once, each on a fresh connection, to a "
        "UserService that runs 2 gunicorn worker processes: the replay store must be "
        "shared by them. *Refused* = at most one copy accepted.",
    ),
    Attack(
        "tampered_request",
        "Tampered body, method or path",
        "A captured request resent with another body, method or path.",
    ),
    Attack(
        "host_confusion",
        "Host confusion: signed for ads, sent to users",
        "A request signed (or a service JWT minted) for AdService, sent to UserService "
        "with `Host` naming ads: the signature must be bound to the receiving origin "
        "(`HTTPSIG_ORIGIN`, port included), the JWT to its audience.",
    ),
    Attack(
        "tampered_claims",
        "Tampered token claims",
        "A token whose claims (`scope`, `sub`, `exp`) were changed, signature kept.",
    ),
    Attack("alg_none", "`alg: none`", "An unsigned token / signature (`alg` none)."),
    Attack(
        "hs256_public_key",
        "HS256 keyed with the public key",
        "Algorithm confusion: HMAC keyed with the verifier's public key (PEM).",
    ),
    Attack(
        "ecdsa_zero",
        "ECDSA r = s = 0 (CVE-2022-21449)",
        "An ES256 / ecdsa-p256-sha256 signature of 64 zero bytes.",
    ),
    Attack(
        "kid_injection",
        "`kid` path traversal / SQL-ish `kid`",
        "`kid` = `../../../../dev/null` (HMAC with an empty key) and "
        "`kid` = `x' UNION SELECT 'k' --` (HMAC keyed `k`); key ids alike for the other "
        "mechanisms.",
    ),
    Attack(
        "header_keys",
        "`jku` / `x5u` / embedded `jwk` → attacker's key",
        "A token signed by the attacker's key, naming that key in `jku`, `x5u` or `jwk`.",
    ),
    Attack("oversized_token", "1 MB token", "A credential of one megabyte."),
    Attack(
        "nested_json",
        "Deeply nested JSON payload",
        "A token whose payload is JSON nested thousands of levels deep.",
    ),
    Attack(
        "idle_connections",
        "Idle TLS connections (denial of service)",
        "200 idle TCP connections, 50 TLS connections that finish the handshake and send "
        "nothing, 5 that stop mid-request-head, held open while the victim calls. "
        "*Refused* = the victim's calls are still served.",
    ),
    Attack(
        "proxy_header",
        "Proxy certificate header from an untrusted client",
        "`ads`' certificate in `X-SSL-Client-Cert` and `X-Forwarded-Client-Cert`, sent "
        "directly (not through a trusted proxy).",
    ),
    Attack(
        "unscoped",
        "Scope never granted",
        "A correctly authenticated caller without `users:read`.",
    ),
    Attack(
        "registration_squat",
        "Registration squatting",
        "Self-registering a service name before the operator adds it: closed by "
        "default; on a UserService with registration open, the operator's documented "
        "`s2s_service add NAME --scope users:read` must not hand the squatter the scope.",
    ),
    Attack(
        "lockout",
        "Token-endpoint lock-out",
        "70 token requests with `Basic worker:wrong` from another address, then the real "
        "`worker` asks for a token (mTLS and private_key_jwt). *Refused* = the real "
        "client still gets its tokens.",
    ),
    Attack(
        "forged_end_user",
        "Forged end-user context",
        "A service claims to act for an end user with a user token it forged.",
    ),
    Attack(
        "raw_token_exposure",
        "Live bearer tokens in the audit log",
        "After ads called on behalf of a logged-in user, and after every bearer token "
        "of the run was used: the user's token, or any bearer token, read back from the "
        "audit table or `s2s_audit export`.",
    ),
    Attack(
        "lifted_user_context",
        "User context lifted at one hop, used at another",
        "An end user's context taken where it was received and presented elsewhere: the "
        "user's own token forwarded by `ads`; the token `ads` got by exchange (RFC 8693) "
        "for users, presented by `worker`.",
    ),
    Attack(
        "repudiation",
        "Denying a request it sent (audit proof)",
        "After a call, the caller denies it: the audit record, exported with "
        "`s2s_audit export`, must be verifiable with nothing but the CA certificate. "
        "*Refused* = the denial is refuted by the proof.",
    ),
    Attack(
        "forged_checkpoint",
        "Deleted audit log hidden by a forged checkpoint",
        "With write access to the database (in a transaction rolled back afterwards): "
        "every audit record deleted and a checkpoint row forged at each anchored head. "
        "*Refused* = `s2s_audit verify --heads` still fails.",
    ),
    Attack(
        "malleated_signature",
        "Malleated signature (r, n - s)",
        "An accepted credential re-encoded with the other valid ECDSA signature "
        "(r, n - s): sent again live, and forged into the audit log as another request "
        "(rolled back). *Refused* = refused live and named a replay by `s2s_audit verify`.",
    ),
)
ATTACK_IDS = tuple(a.id for a in ATTACKS)

_BEARER = "a bearer credential: whoever holds it is the caller, until it expires or is revoked"

PROFILES: tuple[Profile, ...] = (
    Profile(
        "network",
        "Trust the network",
        "No authentication (`/api/v1/ping`): whoever reaches the port is served.",
        expected_accept={
            "no_credentials": "nothing is checked",
            "impersonate_claim": "any caller may say it is anyone",
            "replay": "nothing binds a request",
            "tampered_request": "nothing binds a request",
            "unscoped": "there are no scopes",
            "forged_end_user": "a header is believed as it comes",
            "repudiation": "no record names a caller",
        },
    ),
    Profile(
        "api_key",
        "API key",
        "`Authorization: ApiKey …` (`s2s_service add-key`), on a UserService started with "
        "`S2S_MECHANISMS=service_jwt,http_signature,access_token,api_key,mtls`.",
        expected_accept={
            "stolen_replay": _BEARER,
            "intercepted_unused": _BEARER,
            "replay": _BEARER,
            "tampered_request": "the key does not cover the request",
            "repudiation": "a shared secret proves nothing about who used it",
        },
    ),
    Profile(
        "mtls",
        "mTLS",
        "The client certificate of the TLS connection alone.",
        expected_accept={
            "repudiation": "TLS authenticates the channel but signs no request",
        },
    ),
    Profile(
        "service_jwt",
        "Self-signed service JWT",
        "`Authorization: ServiceJWT …` with the certificate chain in `x5c`, without mTLS.",
        expected_accept={
            "intercepted_unused": "without mTLS a fresh JWT (x5c) is a single-use bearer "
            "for at most JWT_MAX_LIFETIME (60 s) until the victim uses it",
        },
    ),
    Profile(
        "access_token",
        "Client-credentials access token",
        "OAuth2 token (`private_key_jwt` without a client certificate: not bound), "
        "`Authorization: Bearer …`.",
        expected_accept={
            "stolen_replay": _BEARER,
            "intercepted_unused": _BEARER,
            "replay": _BEARER,
            "tampered_request": "the token does not cover the request",
            "repudiation": "the audit keeps its claims and hash: proves what the issuer "
            "granted, not what the caller sent",
        },
    ),
    Profile(
        "bound_token",
        "Certificate-bound access token",
        "OAuth2 token from `tls_client_auth` (`cnf.x5t#S256`, RFC 8705), used over mTLS.",
        expected_accept={
            "repudiation": "the audit keeps its claims and hash: proves what the issuer "
            "granted, not what the caller sent",
        },
    ),
    Profile(
        "http_signature",
        "Signed request (RFC 9421)",
        "`Signature` over `@method`, `@target-uri`, `content-digest`, `created`, nonce; the "
        "signer's certificate registered (`keyid` = its fingerprint), without mTLS.",
        expected_accept={
            "intercepted_unused": "the very same request, sent once, first, by someone "
            "else: the signature pins method, URL and body, so nothing is gained",
        },
    ),
    Profile(
        "default",
        "Default: service JWT over mTLS",
        "What ads sends by default: a fresh self-signed JWT per call (no `x5c`), over mTLS "
        "with its certificate.",
        default=True,
    ),
)
PROFILE_IDS = tuple(p.id for p in PROFILES)


def attack(attack_id: str) -> Attack:
    return next(a for a in ATTACKS if a.id == attack_id)


def profile(profile_id: str) -> Profile:
    return next(p for p in PROFILES if p.id == profile_id)
