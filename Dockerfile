# syntax=docker/dockerfile:1
# workmail-flow's relay and milter as a small image: one static (musl) binary, the CA
# roots for --next-hop-tls required, the bundled samples, and nothing else; it runs as an
# unprivileged user. docs/transports.md shows it behind a TCP load balancer.
#
#   docker build -t workmail-flow .
#   docker run -p 2525:2525 -v $PWD/flow:/etc/workmail-flow/flow workmail-flow \
#     relay --config /etc/workmail-flow/flow/flow.toml --listen 0.0.0.0:2525 --next-hop mx.example.net:25
#
# TARGET=aarch64-unknown-linux-musl builds for Graviton (with the matching musl cross
# toolchain in the build stage).
ARG TARGET=x86_64-unknown-linux-musl

FROM rust:1.95-bookworm AS build
ARG TARGET
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "$TARGET"
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target "$TARGET" --bin workmail-flow \
 && install -D "target/$TARGET/release/workmail-flow" /out/usr/local/bin/workmail-flow \
 && mkdir -p /out/etc/workmail-flow \
 && cp -r samples templates /out/etc/workmail-flow/ \
 && echo 'workmail-flow:x:10001:10001::/nonexistent:/sbin/nologin' > /out/etc/passwd \
 && echo 'workmail-flow:x:10001:' > /out/etc/group

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
# 2525: the relay; 8891: the milter.
EXPOSE 2525 8891
ENTRYPOINT ["/usr/local/bin/workmail-flow"]
CMD ["relay", "--config", "/etc/workmail-flow/samples/flow.toml", "--listen", "0.0.0.0:2525", "--next-hop", "mx.example.net:25"]
