"""A test PKI made by the test (python3-cryptography): CAs, gateway and
server certificates with every defect the mutual-TLS tests need (expired,
not yet valid, revoked, RSA-1024, wildcard, serverAuth-only ...), written
as PEM files."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
_EKU = {"client": ExtendedKeyUsageOID.CLIENT_AUTH, "server": ExtendedKeyUsageOID.SERVER_AUTH,
        "email": ExtendedKeyUsageOID.EMAIL_PROTECTION}
DAY = datetime.timedelta(days=1)


def _key(kind):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    bits = int(kind.replace("rsa", ""))
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Issued:
    """A certificate with its key and files: .cert (PEM certificate, then the
    chain), .key, .both (certificate, chain and key in one file)."""

    def __init__(self, pki, name, cert, key, chain=()):
        self.cert, self.key, self.chain = cert, key, list(chain)
        self.serial = cert.serial_number
        base = os.path.join(pki.dir, name)
        pem = cert.public_bytes(serialization.Encoding.PEM) + b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in self.chain)
        self.cert_path, self.key_path, self.both_path = base + ".pem", base + ".key", base + \
            ".both.pem"
        self.alone_path = base + ".alone.pem"  # the certificate without its chain
        with open(self.cert_path, "wb") as f:
            f.write(pem)
        with open(self.alone_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        if key is None:
            return
        with open(self.key_path, "wb") as f:
            f.write(_pem_key(key))
        with open(self.both_path, "wb") as f:
            f.write(pem + _pem_key(key))
        for p in (self.key_path, self.both_path):
            os.chmod(p, 0o600)


class PKI:
    def __init__(self, dir):
        self.dir = str(dir)
        os.makedirs(self.dir, exist_ok=True)

    def ca(self, name, cn=None, issuer=None, key="ec", not_before=None, not_after=None,
           eku=None):
        """A CA (a root, or under issuer); eku: its extended key usage, as for
        leaf (None: none)."""
        k = _key(key)
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or name),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openum tests")])
        b = (x509.CertificateBuilder().subject_name(subj)
             .issuer_name(issuer.cert.subject if issuer else subj)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(not_before or NOW - DAY)
             .not_valid_after(not_after or NOW + 3650 * DAY)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False,
                                          decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()),
                            critical=False))
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage([_EKU[e] for e in eku]), critical=False)
        cert = b.sign(issuer.key if issuer else k, hashes.SHA256())
        return Issued(self, name, cert, k, [issuer.cert] + issuer.chain if issuer else [])

    def device(self, name, host, san=True, key_cert_sign=False):
        """A gateway's own self-signed certificate that is also a CA certificate:
        what `openssl req -x509 -subj /CN=HOST` makes (basicConstraints CA:TRUE,
        no keyUsage), with a DNS SAN when san, with keyUsage keyCertSign when
        key_cert_sign."""
        k = _key("ec")
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        b = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(NOW - DAY).not_valid_after(NOW + 3650 * DAY)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()),
                            critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]),
                                critical=False)
        if key_cert_sign:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                              key_encipherment=False, data_encipherment=False,
                                              key_agreement=False, key_cert_sign=True,
                                              crl_sign=False, encipher_only=False,
                                              decipher_only=False), critical=True)
        return Issued(self, name, b.sign(k, hashes.SHA256()), k)

    def leaf(self, name, ca, cn=None, dns=(), uris=(), eku=("client", "server"), key="ec",
             not_before=None, not_after=None, digest=None, pubkey=None, key_usage=None):
        """A certificate issued by `ca` (an Issued, or a (subject Name, private key)
        pair for an issuer that exists nowhere). pubkey: certify this key
        (a re-issue for a key kept elsewhere); the Issued then has no key.
        key_usage: names of x509.KeyUsage flags to set ("digital_signature",
        "key_encipherment", ...), None: no keyUsage extension."""
        k = None if pubkey else _key(key)
        ca_name, ca_key = (ca.cert.subject, ca.key) if isinstance(ca, Issued) else ca
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openum tests")]
        if cn:
            attrs.insert(0, x509.NameAttribute(NameOID.COMMON_NAME, cn))
        b = (x509.CertificateBuilder().subject_name(x509.Name(attrs))
             .issuer_name(ca_name).public_key(pubkey or k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(not_before or NOW - DAY)
             .not_valid_after(not_after or NOW + 365 * DAY)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        sans = [x509.DNSName(d) for d in dns] + [x509.UniformResourceIdentifier(u)
                                                 for u in uris]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage([_EKU[e] for e in eku]), critical=False)
        if key_usage is not None:
            flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment",
                                   "data_encipherment", "key_agreement", "key_cert_sign",
                                   "crl_sign", "encipher_only", "decipher_only"), False)
            flags.update(dict.fromkeys(key_usage, True))
            b = b.add_extension(x509.KeyUsage(**flags), critical=True)
        cert = b.sign(ca_key, digest or hashes.SHA256())
        if not isinstance(ca, Issued):
            return Issued(self, name, cert, k, [])
        return Issued(self, name, cert, k, [ca.cert] + ca.chain if ca.chain else [])

    def crl(self, name, ca, revoked, last_update=None, next_update=None):
        b = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
             .last_update(last_update or NOW - DAY).next_update(next_update or NOW + 30 * DAY))
        for serial in revoked:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(NOW - DAY).build())
        crl = b.sign(ca.key, hashes.SHA256())
        path = os.path.join(self.dir, name + ".crl.pem")
        with open(path, "wb") as f:
            f.write(crl.public_bytes(serialization.Encoding.PEM))
        return path
