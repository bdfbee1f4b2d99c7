# One image for every service: `nol serve <service>`. Protobuf code generation uses protox, so
# the build needs no system protoc.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin nol

# The dashboard's packages (ECharts, the Noto Sans SC font) from npm, by the committed lock file.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=optional --no-audit --no-fund
COPY web/index.html ./
COPY web/static ./static

FROM debian:bookworm-slim
# fonts-noto-cjk: the transfer service draws the written notices (书面通知) in Chinese.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/nol nol \
 && mkdir -p /var/lib/nol/keys && chown -R nol:nol /var/lib/nol
COPY --from=build /src/target/release/nol /usr/local/bin/nol
# The reporting service serves the dashboard from here (NOL_WEB_DIR).
COPY --from=web /web /usr/share/nol/web
USER nol
ENV NOL_LOG_FORMAT=json NOL_WEB_DIR=/usr/share/nol/web
ENTRYPOINT ["nol"]
