#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the hand-written seed inputs of tests/fuzz/corpus/<target>/ (seed-* files only).
"""(Re)write the seed corpus of the fuzz targets: tests/fuzz/make_corpus.py

Every input starts with the 5-byte header of fuzz_support.hpp (a flags byte, then a
little-endian 32-bit split seed) followed by the target's payload; the meaning of the flags is
in each <target>_fuzz.cpp's header comment. Only files named seed-* are written or removed:
regression inputs (crash-*, regress-*) stay as they are.
"""

from __future__ import annotations

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Split seeds: the low two bits pick whole / byte by byte / random pieces / two pieces.
WHOLE, BYTEWISE, RANDOM, TWO = 0x100, 0x2345671, 0x5A5A5A2, 0x1F3


def item(flags: int, seed: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode("latin-1")
    return struct.pack("<BI", flags, seed) + payload


# --- parser: request heads, bodies, pipelining -------------------------------------------------
# flags: 1 keep names, 2/4/6 small/tiny/zero limits, 8/16/24 header array 8/1/0, 0x20 rewind,
# 0x40 trailer limit 16.
H = "Host: example.com\r\n"
PARSER = {
    "get-minimal": (0, BYTEWISE, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    "get-curl": (0, RANDOM, "GET /index.html HTTP/1.1\r\n" + H +
                 "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"),
    "get-browser": (0x20, RANDOM,
                    "GET /docs/index.html?lang=en&x=1 HTTP/1.1\r\nHost: www.example.com\r\n"
                    "Connection: keep-alive\r\nsec-ch-ua: \"Chromium\";v=\"122\"\r\n"
                    "Accept-Encoding: gzip, deflate, br\r\n"
                    "Cookie: session=8f14e45f; theme=dark\r\n\r\n"),
    "post-content-length": (0, TWO, "POST /form HTTP/1.1\r\n" + H +
                            "Content-Type: application/x-www-form-urlencoded\r\n"
                            "Content-Length: 11\r\n\r\na=1&b=2+3%21"),
    "pipelined-three": (0, RANDOM, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                        "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                        "GET /c?d=%41 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    "chunked-body": (0, BYTEWISE, "POST /up HTTP/1.1\r\n" + H +
                     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n"
                     "0\r\nX-Trailer: yes\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    "chunked-trailer-limit": (0x40, RANDOM, "PUT /x HTTP/1.1\r\nHost: h\r\n"
                              "transfer-encoding: CHUNKED\r\n\r\n1\r\na\r\n0\r\n"
                              "A-Long-Trailer-Field: with a long value\r\n\r\n"),
    "http10-keep-alive": (0, WHOLE, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                          "GET /again HTTP/1.0\r\n\r\n"),
    "http10-chunked-closes": (0, TWO, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"),
    "absolute-form": (0, RANDOM, "GET http://Example.COM:8080/p/a/t/h?q=1 HTTP/1.1\r\n"
                      "Host: other\r\n\r\n"),
    "options-asterisk": (0, BYTEWISE, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
    "connect-authority": (0, TWO, "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"),
    "expect-upgrade": (0, RANDOM, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, keep-alive"
                       "\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n"),
    "leading-empty-lines": (0x20, BYTEWISE, "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    "leading-empty-lines-too-many": (0, RANDOM, "\r\n" * 9 + "GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    "percent-path": (0, WHOLE, "GET /a%20b/%C3%A9t%C3%A9?x=%41+b&&y&z=%zz HTTP/1.1\r\n"
                     "Host: h\r\n\r\n"),
    "percent-path-invalid": (0, WHOLE, "GET /a%00b/%4 HTTP/1.1\r\nHost: h\r\n\r\n"),
    "names-not-normalized": (1, RANDOM, "GET / HTTP/1.1\r\nhOST: h\r\nx-lower-CASE: v\r\n\r\n"),
    # Smuggling and framing ambiguities: every one must be refused.
    "smuggle-cl-te": (0, RANDOM, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"),
    "smuggle-te-cl": (0, RANDOM, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                      "Content-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n"),
    "smuggle-te-chunked-twice": (0, WHOLE, "POST / HTTP/1.1\r\nHost: h\r\n"
                                 "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
    "smuggle-te-not-last": (0, WHOLE, "POST / HTTP/1.1\r\nHost: h\r\n"
                            "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
    "smuggle-te-unknown": (0, TWO, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked"
                           "\r\n\r\n"),
    "smuggle-te-space-colon": (0, WHOLE, "POST / HTTP/1.1\r\nHost: h\r\n"
                               "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    "smuggle-te-obs-fold": (0, WHOLE, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n"
                            " chunked\r\n\r\n"),
    "smuggle-cl-disagree": (0, RANDOM, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n"
                            "Content-Length: 5\r\n\r\nhello"),
    "smuggle-cl-sign": (0, WHOLE, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n"),
    "smuggle-cl-overflow": (0, WHOLE, "POST / HTTP/1.1\r\nHost: h\r\n"
                            "Content-Length: 99999999999999999999\r\n\r\n"),
    "smuggle-chunk-size-overflow": (0, RANDOM, "POST / HTTP/1.1\r\nHost: h\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n"
                                    "10000000000000005\r\nhello\r\n0\r\n\r\n"),
    "smuggle-chunk-bare-lf": (0, BYTEWISE, "POST / HTTP/1.1\r\nHost: h\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"),
    "bare-lf-head": (0, BYTEWISE, "GET / HTTP/1.1\nHost: h\n\n"),
    "bare-cr-head": (0, TWO, "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"),
    "duplicate-host": (0, WHOLE, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    "missing-host": (0, WHOLE, "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"),
    "bad-host-userinfo": (0, WHOLE, "GET / HTTP/1.1\r\nHost: user@h:80\r\n\r\n"),
    "nul-in-value": (0, WHOLE, "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n"),
    "version-2": (0, WHOLE, "GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
    "small-limits-long-uri": (2, BYTEWISE, "GET /" + "a" * 60 + " HTTP/1.1\r\nHost: h\r\n\r\n"),
    "small-array-many-headers": (8 | 2, RANDOM, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n"
                                 "C: 3\r\nD: 4\r\nE: 5\r\n\r\n"),
    "zero-limits": (6 | 24, TWO, "GET / HTTP/1.1\r\n\r\n"),
}

# --- chunked: bodies ---------------------------------------------------------------------------
# flags: 0/1/2/3 trailer limit 8192/64/1/0, 4 reuse a decoder.
CHUNKED = {
    "one-chunk": (0, BYTEWISE, "5\r\nhello\r\n0\r\n\r\n"),
    "empty": (0, WHOLE, "0\r\n\r\n"),
    "many-chunks": (4, RANDOM, "1\r\na\r\n2\r\nbc\r\nA\r\n0123456789\r\nf\r\n" + "x" * 15 +
                    "\r\n0\r\n\r\n"),
    "extensions": (0, RANDOM, "5;name=value;flag\r\nhello\r\n3 ; q=\"x y\"\r\nabc\r\n0;last\r\n\r\n"),
    "bws-before-cr": (0, TWO, "5 \r\nhello\r\n0\r\n\r\n"),
    "trailers": (0, BYTEWISE, "3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n"),
    "trailers-over-limit": (1, RANDOM, "0\r\nX-Long: " + "v" * 80 + "\r\n\r\n"),
    "trailer-limit-one": (2, BYTEWISE, "0\r\nA:\r\n\r\n"),
    "trailer-obs-fold": (0, WHOLE, "0\r\nA: b\r\n c\r\n\r\n"),
    "trailer-no-colon": (0, WHOLE, "0\r\nNoColon\r\n\r\n"),
    "upper-hex": (0, RANDOM, "1A\r\n" + "z" * 26 + "\r\n0\r\n\r\n"),
    "sixteen-digits": (0, TWO, "0000000000000003\r\nabc\r\n0\r\n\r\n"),
    "seventeen-digits": (0, WHOLE, "00000000000000003\r\nabc\r\n0\r\n\r\n"),
    "max-size": (0, WHOLE, "8000000000000000\r\nabc"),
    "over-max-size": (0, WHOLE, "8000000000000001\r\n"),
    "bare-lf": (0, BYTEWISE, "5\nhello\r\n0\r\n\r\n"),
    "missing-crlf-after-data": (0, TWO, "3\r\nabcd\r\n0\r\n\r\n"),
    "next-request-after": (4, RANDOM, "2\r\nok\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
    "no-digits": (0, WHOLE, ";ext\r\n\r\n"),
    "long-extension": (0, RANDOM, "1;" + "e" * 4100 + "\r\na\r\n0\r\n\r\n"),
    "truncated": (0, BYTEWISE, "a\r\n01234"),
}

# --- query: six lines: path, query (also a form body), Cookie, cookie pair, Path, Domain --------
# flags: 0-3 SameSite, 4 Secure, 8 HttpOnly, 16 Partitioned, 32 Max-Age, 64 Expires.
QUERY = {
    "plain": (0, 0, "/users/42\nq=io_uring&page=2\nsession=abc; theme=dark\nsid=xyz\n/\n"),
    "escapes": (4 | 32, 3600, "/a%20b/%C3%A9\nname=J%C3%BCrgen+M&x=%2B%2b\n"
                "a=\"quoted\"; b==eq\nid=\"v\"\n/app\nexample.com"),
    "invalid-escapes": (0, 0, "/bad%zz/%4\nq=%G1&r=100%&s=%00&%41%zz=1\n;;x; =y; z=\n"
                        "n=has space\n/\n"),
    "nul-escape": (0, 0, "/a%00\n%00=%00\n\n"),
    "empty-pairs": (0, 0, "/\n&&=&a&=b&&c=\n  ;  ; k = v ;\n"),
    "plus-and-equals": (8, 7, "/p+q\na+b=c+d=e&+=+\nk=v=w\nk=v=w\n"),
    "host-prefix": (2 | 4, 0, "/\n\n__Host-s=1\n__Host-s=1\n/\n"),
    "host-prefix-bad": (0, 0, "/\n\n\n__Host-s=1\n/x\nexample.com"),
    "secure-prefix": (3, 0, "/\n\n\n__Secure-t=ok\n\n"),
    "partitioned": (16 | 64, 86400, "/\n\n\nchips=1\n/\n"),
    "expires-negative": (64 | 32, 0xFFFFFF00, "/\n\n\nold=1\n/\n"),
    "bad-cookie-name": (0, 0, "/\n\n\nbad name=1\n/\n"),
    "attribute-injection": (0, 0, "/\n\n\nk=v\n/; Domain=evil\nexample.com;x"),
    "utf8": (0, 0, "/\xc3\xa9\n\xc3\xa9=\xe2\x82\xac\nc=\xc3\xa9\nk=\xc3\xa9\n/\xc3\xa9\n"),
    "long-query": (0, 0, "/\n" + "&".join(f"k{i}=v%{i:02X}" for i in range(1, 60)) + "\n"),
}

# --- router: raw tables and probes, and model-mode byte strings ---------------------------------
# flags: 0 raw lines; 1 model mode with generated probes; 3 model mode with raw probe lines.
ROUTER = {
    "api-table": (0, 0, "GET /users\nPOST /users\nGET /users/:id\nPUT /users/:id\n"
                  "DELETE /users/:id\nGET /users/:id/posts/:post\nGET /users/new\n"
                  "GET /files/*path\n* /any/:thing\nPURGE /cache/*key\nGET /static/\n\n"
                  "GET /users\nHEAD /users/7\nDELETE /users/new\nGET /users/7/posts/9\n"
                  "GET /files/\nGET /files\nGET /files/a/b/c\nBREW /any/pot\nOPTIONS /users\n"
                  "GET /static\nGET /users/\nPOST /cache/x\n"),
    "conflicts": (0, 0, "GET /a/:x\nGET /a/:y\nPOST /a/:x\nGET /b/*r\nGET /b/*s\nGET /a/:x\n"
                  "* /a/:x\n* /a/:x\nGET /c/*r/d\nGET /d/:\nGET /e/:a/:a\nget /f\nG@T /g\n"
                  "GET nope\nGET \n\nGET /a/1\nPOST /a/1\nGET /b/x/y\nGET /e/1/2\n"),
    "colon-inside-segment": (0, 0, "GET /a:b\nGET /a/b:c/:d\nGET /x*y\n\nGET /a:b\n"
                             "GET /a/b:c/zz\nGET /x*y\nGET /a\n"),
    "trailing-slashes": (0, 0, "GET /a/\nGET /b\nGET /c/:x/\nGET /d/*r\nPOST /e/\n\nGET /a\n"
                         "GET /b/\nGET /c/1\nGET /c/1/\nGET /d\nPOST /e\nGET /e\nGET /\n"),
    "backtracking": (0, 0, "GET /users/new\nGET /users/:id/posts\nGET /:a/:b/c\nGET /x/y/*r\n"
                     "GET /x/:p/z\n\nGET /users/new/posts\nGET /x/y/z\nGET /q/r/c\n"
                     "GET /x/y/\n"),
    "many-params": (0, 0, "GET " + "".join(f"/:p{i}" for i in range(16)) + "\nGET " +
                    "".join(f"/:q{i}" for i in range(17)) + "\n\nGET " +
                    "".join(f"/{i}" for i in range(16)) + "\n"),
    "weird-paths": (0, 0, "GET /\nGET /a//b\nGET /%41\n\nGET \nGET a\nGET //\nGET /a//b\n"
                    "GET /a/./b\nGET /%41\n\xff /\n"),
    "root-only-moved": (2, 0, "* /\nGET /a/:b\n\nGET /\nFOO /\nGET //\nGET /a/x\n"),
    "model-1": (1, 0, bytes(range(0, 256, 7))),
    "model-2": (1, 0, bytes((i * 37 + 11) % 256 for i in range(300))),
    "model-3": (1, 0, bytes([20] + [i % 10 for i in range(200)])),
    "model-raw-probes": (3, 0, bytes([8, 3, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) +
                         b"\nGET /a\nGET /ab/x\nPOST /b/zz/\nGET /a:b\n"),
}

# --- multipart: a Content-Type line (or just a boundary), then the body -------------------------
# flags: 1 max_parts 2, 2 max_header_bytes 40, 4 memory_limit 8 (spill), 8 max_body_bytes 64.
CT = "multipart/form-data; boundary=XyZ\n"
PART = 'Content-Disposition: form-data; name="{}"'


def mp(*parts: str, close: bool = True, pre: str = "", post: str = "") -> str:
    out = pre
    for p in parts:
        out += "--XyZ\r\n" + p
        out += "\r\n"
    return out + ("--XyZ--" + post if close else "")


MULTIPART = {
    "one-field": (0, BYTEWISE, CT + mp(PART.format("a") + "\r\n\r\nvalue")),
    "field-and-file": (0, RANDOM, CT + mp(
        PART.format("title") + "\r\n\r\nHello",
        PART.format("upload") + '; filename="dir/a.txt"\r\nContent-Type: text/plain\r\n\r\n'
        "file\r\ncontent\r\n-- not a delimiter",
    )),
    "boundary-only-line": (0, TWO, "b\n--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n"
                           "--b--"),
    "quoted-boundary": (0, RANDOM, 'Multipart/Form-Data; charset=utf-8; boundary="a b:c"\n'
                        "--a b:c\r\n" + PART.format("q") + "\r\n\r\nv\r\n--a b:c--\r\n"),
    "preamble-epilogue": (0, RANDOM, CT + mp(PART.format("p") + "\r\n\r\nx",
                                             pre="preamble\r\n", post="\r\nepilogue--XyZ\r\n")),
    "transport-padding": (0, BYTEWISE, CT + "--XyZ \t\r\n" + PART.format("p") +
                          "\r\n\r\nx\r\n--XyZ--"),
    "filename-star": (0, RANDOM, CT + mp(PART.format("f") + "; filename=\"fallback.txt\"; "
                                         "filename*=UTF-8''%e2%82%ac%20rates.txt\r\n\r\n$")),
    "filename-star-latin1": (0, WHOLE, CT + mp(PART.format("f") +
                                               "; filename*=iso-8859-1'en'%A3.txt\r\n\r\nx")),
    "filename-dotdot": (0, WHOLE, CT + mp(PART.format("f") + '; filename="..\\\\.."\r\n\r\nx')),
    "empty-filename": (0, WHOLE, CT + mp(PART.format("f") + '; filename=""\r\n\r\n')),
    "bare-lf-delimiter": (0, BYTEWISE, CT + "--XyZ\n" + PART.format("a") + "\r\n\r\nv\r\n--XyZ--"),
    "bare-lf-header": (0, TWO, CT + "--XyZ\r\n" + PART.format("a") + "\n\r\nv\r\n--XyZ--"),
    "lf-delimiter-is-content": (0, RANDOM, CT + mp(PART.format("a") + "\r\n\r\nx\n--XyZ\n"
                                                   "still content\r\n--XyZ-not-close")),
    "malformed-delimiter": (0, WHOLE, CT + "--XyZx\r\n"),
    "truncated": (0, RANDOM, CT + "--XyZ\r\n" + PART.format("a") + "\r\n\r\npartial\r\n--Xy"),
    "no-disposition": (0, WHOLE, CT + mp("Content-Type: text/plain\r\n\r\nx")),
    "duplicate-disposition": (0, WHOLE, CT + mp(PART.format("a") + "\r\n" + PART.format("b") +
                                                "\r\n\r\nx")),
    "bad-disposition-params": (0, RANDOM, CT + mp('Content-Disposition: form-data; name="a'
                                                  "\r\n\r\nx")),
    "no-name": (0, WHOLE, CT + mp('Content-Disposition: form-data; filename="x"\r\n\r\ny')),
    "obs-fold-header": (0, WHOLE, CT + mp(PART.format("a") + "\r\n folded\r\n\r\nx")),
    "too-many-parts": (1, RANDOM, CT + mp(*(PART.format(f"f{i}") + "\r\n\r\nv" for i in range(4)))),
    "header-too-large": (2, BYTEWISE, CT + mp(PART.format("a") + "; x=" + "y" * 40 + "\r\n\r\nv")),
    "spill-to-file": (4, RANDOM, CT + mp(
        PART.format("big") + '; filename="big.bin"\r\n\r\n' + "0123456789" * 6,
        PART.format("small") + "\r\n\r\n1234",
        PART.format("toolong") + "\r\n\r\n123456789")),
    "body-limit": (8, RANDOM, CT + mp(PART.format("a") + "\r\n\r\n" + "x" * 80)),
    "nested-mixed": (0, RANDOM, CT + mp(PART.format("files") + "\r\nContent-Type: multipart/mixed;"
                                        " boundary=inner\r\n\r\n--inner\r\nContent-Disposition:"
                                        " file; filename=a\r\n\r\nA\r\n--inner--")),
    "bad-content-type": (0, WHOLE, "text/plain; boundary=XyZ\n--XyZ--"),
    "two-boundaries": (0, WHOLE, "multipart/form-data; boundary=a; boundary=b\n--a--"),
    "boundary-trailing-space": (0, WHOLE, 'multipart/form-data; boundary="ab "\n--ab --'),
    "boundary-71": (0, WHOLE, "multipart/form-data; boundary=" + "b" * 71 + "\n"),
}

TARGETS = {
    "parser": PARSER,
    "chunked": CHUNKED,
    "query": QUERY,
    "router": ROUTER,
    "multipart": MULTIPART,
}


def main() -> int:
    for target, seeds in TARGETS.items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.remove(os.path.join(d, f))
        for name, (flags, seed, payload) in seeds.items():
            with open(os.path.join(d, f"seed-{name}"), "wb") as f:
                f.write(item(flags, seed, payload))
        print(f"{target}: {len(seeds)} seeds in {os.path.relpath(d)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
