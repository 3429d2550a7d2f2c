#!/bin/sh
# Regenerates the certificate fixtures of classify/src/tls/tests.rs (DER files). Keys
# are fresh on every run; the names and validity dates the tests check are
# fixed here. Needs the openssl CLI (`openssl ca` is used for its
# -startdate/-enddate, which `openssl req`/`x509` of OpenSSL 3.0 lack).
set -eu
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
dir = $work
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
organizationName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[pool_ext]
basicConstraints = CA:false
subjectAltName = DNS:pool.supportxmr.com, DNS:*.SupportXMR.com, IP:192.0.2.7
[node_ext]
basicConstraints = CA:false
subjectAltName = @node_names
[node_names]
CNF
i=0
while [ $i -lt 20 ]; do
    echo "DNS.$i = n$i.example.net" >> "$work/ca.cnf"
    i=$((i + 1))
done

sign() { # name subject extensions issuer-cert issuer-key [self]
    : > "$work/index.txt"
    echo 01 > "$work/serial"
    openssl req -new -config "$work/ca.cnf" -key "$work/$1.key" -subj "$2" -out "$work/$1.csr"
    if [ "$4" = self ]; then
        issuer="-selfsign -keyfile $work/$1.key"
    else
        issuer="-cert $work/$4.pem -keyfile $work/$4.key"
    fi
    # shellcheck disable=SC2086
    openssl ca -batch -notext -config "$work/ca.cnf" -extensions "$3" $issuer \
        -startdate 20250101000000Z -enddate 20350101000000Z \
        -in "$work/$1.csr" -out "$work/$1.pem"
    openssl x509 -in "$work/$1.pem" -outform DER -out "$1.der"
}

openssl ecparam -name prime256v1 -genkey -noout -out "$work/pool-self-signed.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/test-ca.key"
openssl genrsa -out "$work/node-signed.key" 2048
sign pool-self-signed "/O=Pool Operator/CN=pool.supportxmr.com" pool_ext self
sign test-ca "/CN=Assay Test CA" ca_ext self
sign node-signed "/CN=node.example.net" node_ext test-ca
