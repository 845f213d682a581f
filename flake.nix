{
  description = "Aspen: a Raft-replicated KV store and cluster control over iroh, and its lab";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs { inherit system; };
        aspen = pkgs.rustPlatform.buildRustPackage {
          pname = "aspen";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          nativeBuildInputs = [ pkgs.cmake pkgs.perl ];
          # The integration tests start nodes on loopback; run them with `scripts/test.sh`.
          doCheck = false;
        };
      in {
        packages.default = aspen;
        devShells.default = pkgs.mkShell {
          packages = [
            pkgs.cargo pkgs.rustc pkgs.rustfmt pkgs.clippy pkgs.rust-analyzer
            pkgs.cargo-nextest
            pkgs.cmake pkgs.perl   # aws-lc-sys (ractor_cluster's TLS) builds C
            pkgs.iproute2 pkgs.nftables   # network-namespace tests
          ];
        };
      });
}
