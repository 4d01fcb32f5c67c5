"""Signed CAP (issue 18 §6): a real alert's CAP message, fetched through the API of a server
configured with a key, verifies with an independent XML-DSig verifier against the certificate
the server publishes — and stops verifying when one byte of its ``info`` changes, or when
somebody else signs it.

The independent verifier is ``xmlsec1`` (Debian's package, the XML Security Library's
command line; tests/ensure_browser.py installs it), given the served certificate as its one
trusted certificate. signxml's own verifier checks the same messages too, so the signature is
checked even where xmlsec1 is missing (then its tests skip, saying so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from lxml import etree
from pydantic import ValidationError
from signxml import InvalidSignature, XMLVerifier

from geo_api.app import create_app
from geo_api.cli import main as cli
from geo_api.settings import CapSettings
from layers.alerts.cap_signature import (
    CERT_FILE,
    KEY_FILE,
    CapSigner,
    SigningKeyError,
    self_signed,
    write_key_pair,
)
from tests.conftest import LiveServer, make_settings

XSD = Path(__file__).parent / "data" / "cap-1.2.xsd"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
XMLSEC1 = shutil.which("xmlsec1")
needs_xmlsec1 = pytest.mark.skipif(
    XMLSEC1 is None, reason="needs xmlsec1 (apt-get install xmlsec1; tests/ensure_browser.py)"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_key_pair(tmp_path_factory.mktemp("cap"), "GeoRisk test CAP", 30)


@pytest.fixture(scope="module")
def signing_server(database_url: str, keys: tuple[Path, Path]) -> Iterator[LiveServer]:
    settings = make_settings(database_url)
    settings.cap = CapSettings(key_file=keys[0], cert_file=keys[1])
    with LiveServer(settings) as server:
        yield server


def _alert_id(live: LiveServer) -> int:
    """A real alert of the seeded demo city."""
    with live.client() as http:
        r = http.get("/api/alerts", params={"f": "json", "limit": 1})
        assert r.status_code == 200, r.text
        (alert,) = r.json()["alerts"]
        return int(alert["id"])


@pytest.fixture(scope="module")
def signed(signing_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The served certificate (fetched without credentials) and one signed CAP message."""
    out = tmp_path_factory.mktemp("signed")
    cert = httpx.get(signing_server.base_url + "/api/cap/certificate.pem")
    assert cert.status_code == 200 and cert.headers["content-type"] == "application/x-pem-file"
    (out / "served.pem").write_bytes(cert.content)
    with signing_server.client() as http:
        r = http.get(f"/api/alerts/{_alert_id(signing_server)}.cap")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/cap+xml")
    (out / "alert.xml").write_bytes(r.content)
    return {"dir": out, "cert": cert.content, "body": r.content}


def _xmlsec1(message: Path, trusted: Path) -> subprocess.CompletedProcess[str]:
    assert XMLSEC1 is not None
    return subprocess.run(
        [XMLSEC1, "--verify", "--trusted-pem", str(trusted), str(message)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _flip_one_byte(body: bytes) -> bytes:
    """The English description's first letter changed (V → W): one byte, inside ``info``."""
    at = body.index(b"<description>Vehicle ") + len(b"<description>")
    assert body[at : at + 1] == b"V"
    return body[:at] + b"W" + body[at + 1 :]


def test_the_served_certificate_is_the_configured_one(
    signed: dict[str, Any], keys: tuple[Path, Path]
) -> None:
    assert signed["cert"] == keys[1].read_bytes()
    assert signed["cert"].startswith(b"-----BEGIN CERTIFICATE-----")


def test_signed_cap_is_enveloped_xmldsig_and_still_valid_cap(signed: dict[str, Any]) -> None:
    doc = etree.fromstring(signed["body"])
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(doc), schema.error_log  # ds:Signature is CAP's ##other slot
    sig = doc[-1]
    assert sig.tag == DS + "Signature" and doc[-2].tag == CAP + "info"
    algorithm = {
        el.tag.removeprefix(DS): el.get("Algorithm")
        for el in sig.iter()
        if isinstance(el.tag, str) and el.get("Algorithm")
    }
    assert algorithm["CanonicalizationMethod"] == "http://www.w3.org/2001/10/xml-exc-c14n#"
    assert algorithm["SignatureMethod"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert algorithm["DigestMethod"] == "http://www.w3.org/2001/04/xmlenc#sha256"
    transforms = [t.get("Algorithm") for t in sig.iter(DS + "Transform")]
    assert transforms[0] == "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
    (reference,) = sig.iter(DS + "Reference")
    assert reference.get("URI") == ""  # the whole alert is signed
    assert sig.findtext(f".//{DS}X509Certificate")


@needs_xmlsec1
def test_xmlsec1_verifies_it_and_rejects_one_changed_byte(signed: dict[str, Any]) -> None:
    out: Path = signed["dir"]
    ok = _xmlsec1(out / "alert.xml", out / "served.pem")
    assert ok.returncode == 0 and "OK" in ok.stderr, ok.stderr
    (out / "tampered.xml").write_bytes(_flip_one_byte(signed["body"]))
    bad = _xmlsec1(out / "tampered.xml", out / "served.pem")
    assert bad.returncode != 0 and "FAIL" in bad.stderr, bad.stderr
    assert "data and digest do not match" in bad.stderr


@needs_xmlsec1
def test_xmlsec1_rejects_a_forger_with_a_key_of_their_own(signed: dict[str, Any]) -> None:
    """A forger signs the same message with their own self-signed certificate embedded: the
    signature is intact, but receivers trust only ours."""
    key_pem, cert_pem = self_signed("GeoRisk CAP alerts", 30, key_size=2048)
    unsigned = etree.fromstring(signed["body"])
    unsigned.remove(unsigned[-1])
    forged = CapSigner.from_pem(key_pem, cert_pem).sign(etree.tostring(unsigned))
    out: Path = signed["dir"]
    (out / "forged.xml").write_bytes(forged)
    (out / "forger.pem").write_bytes(cert_pem)
    assert _xmlsec1(out / "forged.xml", out / "forger.pem").returncode == 0  # well formed…
    refused = _xmlsec1(out / "forged.xml", out / "served.pem")
    assert refused.returncode != 0, refused.stderr  # …but not ours


def test_signxml_verifies_with_the_served_certificate(signed: dict[str, Any]) -> None:
    result = XMLVerifier().verify(signed["body"], x509_cert=signed["cert"].decode())
    assert not isinstance(result, list) and result.signed_xml is not None
    assert result.signed_xml.findtext(CAP + "identifier", "").startswith("georisk-alert-")
    with pytest.raises(InvalidSignature):
        XMLVerifier().verify(_flip_one_byte(signed["body"]), x509_cert=signed["cert"].decode())


def test_unsigned_when_no_key_is_configured(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.cap = CapSettings(key_file=None, cert_file=None)  # whatever the shell exports
    with LiveServer(settings) as unsigned, unsigned.client() as http:
        r = http.get(f"/api/alerts/{_alert_id(unsigned)}.cap")
        assert r.status_code == 200
        doc = etree.fromstring(r.content)
        assert doc.find(DS + "Signature") is None and doc[-1].tag == CAP + "info"
        cert = httpx.get(unsigned.base_url + "/api/cap/certificate.pem")
        assert cert.status_code == 404 and "no signing key" in cert.json()["detail"]


def test_a_bad_key_configuration_stops_the_start(
    database_url: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    other_key, _ = write_key_pair(tmp_path / "other", "other", 1)
    settings = make_settings(database_url)
    settings.cap = CapSettings(key_file=other_key, cert_file=keys[1])
    with pytest.raises(SigningKeyError, match="the certificate is not the key's"):
        create_app(settings)
    settings.cap = CapSettings(key_file=tmp_path / "missing.pem", cert_file=keys[1])
    with pytest.raises(SigningKeyError, match="cannot read"):
        create_app(settings)
    with pytest.raises(ValidationError, match="go together"):
        CapSettings(key_file=keys[0])


def test_cli_keygen_makes_a_private_pair_once(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cap"
    first = runner.invoke(cli, ["cap", "keygen", "--out", str(out), "--days", "10"])
    assert first.exit_code == 0, first.output
    key, cert = out / KEY_FILE, out / CERT_FILE
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert f"GEORISK_CAP_KEY_FILE={key.absolute()}" in first.output
    signer = CapSigner.from_files(key, cert)  # the pair belongs together
    assert signer.key.key_size >= 3072
    before = key.read_bytes()
    again = runner.invoke(cli, ["cap", "keygen", "--out", str(out)])
    assert again.exit_code == 1 and "already holds" in again.output
    kept = runner.invoke(cli, ["cap", "keygen", "--out", str(out), "--if-missing"])
    assert kept.exit_code == 0 and key.read_bytes() == before
