# One image for every service: `nol serve <service>`. Protobuf code generation uses protox, so
# the build needs no system protoc.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin nol

FROM debian:bookworm-slim
# fonts-noto-cjk: the transfer service draws the written notices (书面通知) in Chinese.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/nol nol \
 && mkdir -p /var/lib/nol/keys && chown -R nol:nol /var/lib/nol
COPY --from=build /src/target/release/nol /usr/local/bin/nol
USER nol
ENV NOL_LOG_FORMAT=json
ENTRYPOINT ["nol"]
