# syntax=docker/dockerfile:1
# A small, static image: the binary built for musl, on a distroless base that
# carries only CA certificates and a non-root user.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools cmake clang \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --profile production --locked --target x86_64-unknown-linux-musl --bin wix-elevator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/production/wix-elevator /usr/local/bin/wix-elevator
COPY proxy.yaml /etc/wix-elevator/proxy.yaml
COPY policies /etc/wix-elevator/policies
# Inside a container the listeners must face the pod network; the admin
# port is for the kubelet's probes and Prometheus, not for a Service.
ENV WIX_ELEVATOR_LISTEN=0.0.0.0:8080 \
    WIX_ELEVATOR_ADMIN_LISTEN=0.0.0.0:9901
EXPOSE 8080 9901
USER nonroot
ENTRYPOINT ["/usr/local/bin/wix-elevator"]
CMD ["serve", "--config", "/etc/wix-elevator/proxy.yaml"]
