#!/bin/sh
# Prints the home of a JDK 25 or newer, the JDK that ./mvnw runs Maven on and ./vringj runs the
# main job on. Where it looks, in order:
#   1. JAVA_HOME, if it is a JDK 25+;
#   2. the java on PATH, if it is a JDK 25+;
#   3. JAVA*_HOME* variables (JAVA25_HOME, CI's JAVA_HOME_25_X64, ...) and the places installers
#      put JDKs (/usr/lib/jvm, /usr/java, /opt, SDKMAN, IntelliJ, Gradle, asdf, mise, macOS),
#      a JDK 25 first, else the first newer one.
# A JDK is a directory with bin/java and bin/javac; its version comes from its `release` file
# (no JVM is started), or from `java -XshowSettings` when that file is missing.
# When there is none, it prints one message saying how to get one and exits 1.
set -eu

required=25

# The feature release of the JDK at $1 (17 for 17.0.15, 8 for 1.8.0_402), or 0 if it is no JDK.
feature_release() {
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || { echo 0; return; }
  if [ -f "$1/release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$1/release" | head -n 1)
  else
    v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 \
      | sed -n 's/^ *java\.specification\.version = //p' | head -n 1) || v=
  fi
  case "$v" in
    1.*) v=${v#1.} ;;
  esac
  v=${v%%[!0-9]*}
  echo "${v:-0}"
}

# The home of the java command on PATH (through any symlinks), or nothing.
path_java_home() {
  java=$(command -v java 2>/dev/null) || return 0
  while [ -L "$java" ]; do
    link=$(readlink "$java")
    case "$link" in
      /*) java=$link ;;
      *) java=$(dirname "$java")/$link ;;
    esac
  done
  (cd "$(dirname "$java")/.." 2>/dev/null && pwd -P) || true
}

if [ -n "${JAVA_HOME:-}" ] && [ "$(feature_release "$JAVA_HOME")" -ge "$required" ]; then
  echo "$JAVA_HOME"
  exit 0
fi

on_path=$(path_java_home)
if [ -n "$on_path" ] && [ "$(feature_release "$on_path")" -ge "$required" ]; then
  echo "$on_path"
  exit 0
fi

newer=
found=
check() {
  r=$(feature_release "$1")
  if [ "$r" -eq "$required" ]; then
    found=$1
  elif [ "$r" -gt "$required" ] && [ -z "$newer" ]; then
    newer=$1
  fi
}

for home in $(env | sed -n 's/^JAVA[A-Za-z0-9_]*HOME[A-Za-z0-9_]*=//p'); do
  check "$home"
  [ -z "$found" ] || break
done
if [ -z "$found" ]; then
  user_home=${HOME:-/nonexistent}
  for home in /usr/lib/jvm/* /usr/lib64/jvm/* /usr/java/* /opt/java/* /opt/*jdk* /opt/jdk/* \
      "$user_home"/.sdkman/candidates/java/* "$user_home"/.jdks/* "$user_home"/.gradle/jdks/* "$user_home"/.m2/jdks/* \
      "$user_home"/.asdf/installs/java/* "$user_home"/.local/share/mise/installs/java/* \
      /Library/Java/JavaVirtualMachines/*/Contents/Home "$user_home"/Library/Java/JavaVirtualMachines/*/Contents/Home \
      /opt/homebrew/opt/openjdk*/libexec/openjdk.jdk/Contents/Home /usr/local/opt/openjdk*/libexec/openjdk.jdk/Contents/Home; do
    [ -d "$home" ] || continue
    check "$home"
    [ -z "$found" ] || break
  done
fi
home=${found:-$newer}
if [ -n "$home" ]; then
  if [ -n "${JAVA_HOME:-}" ]; then
    echo "note: JAVA_HOME=$JAVA_HOME is not a JDK $required or newer; using $home" >&2
  fi
  echo "$home"
  exit 0
fi

# What the JDK at $1 is, or $2 when $1 is empty.
describe() {
  if [ -z "$1" ]; then
    echo "$2"
  elif [ "$(feature_release "$1")" -gt 0 ]; then
    echo "Java $(feature_release "$1") at $1"
  else
    echo "$1, not a JDK"
  fi
}
cat >&2 <<EOF
vringj needs a JDK $required or newer and found none. It looked at JAVA_HOME ($(describe "${JAVA_HOME:-}" unset)),
the java on PATH ($(describe "$on_path" none)), JAVA*_HOME variables, /usr/lib/jvm, /usr/java, /opt,
~/.sdkman, ~/.jdks, ~/.gradle/jdks, asdf, mise and /Library/Java. Install a JDK $required, e.g. Temurin
from https://adoptium.net/temurin/releases/?version=$required or your system's packages, then run the
same command again; if you put it somewhere else, set JAVA_HOME to it.
EOF
exit 1
