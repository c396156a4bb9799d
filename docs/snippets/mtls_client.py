from pathlib import Path

from s2s_auth.client import ServiceClient


def users_client(base_url, pki_dir):
    pki = Path(pki_dir)
    return ServiceClient(
        base_url,
        ca_bundle=pki / "ca.pem",  # the server's certificate must chain to our CA
        cert=(pki / "ads.pem", pki / "ads.key"),  # our chain (leaf + intermediate), our key
        timeout=(2.0, 5.0),  # connect, read
    )
