#include "qvmail/password.hpp"

#include <openssl/crypto.h>

#include <crypt.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "qvmail/error.hpp"

namespace qv {

namespace {

const char* prefix(HashMethod m) {
    switch (m) {
        case HashMethod::md5:
            return "$1$";
        case HashMethod::sha256:
            return "$5$";
        case HashMethod::sha512:
            return "$6$";
        case HashMethod::yescrypt:
            return "$y$";
    }
    return "$6$";
}

void random_bytes(unsigned char* buf, std::size_t n) {
    while (n > 0) {
        ssize_t r = ::getrandom(buf, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            throw Error(Exit::software, std::string("cannot get random bytes: ") + std::strerror(errno));
        }
        buf += r;
        n -= static_cast<std::size_t>(r);
    }
}

struct CryptData {
    struct crypt_data data;
};

}  // namespace

std::string hash_password(std::string_view password, HashMethod method) {
    unsigned char rnd[32];
    random_bytes(rnd, sizeof rnd);
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!::crypt_gensalt_rn(prefix(method), 0, reinterpret_cast<const char*>(rnd), sizeof rnd, setting, sizeof setting))
        throw Error(Exit::software, "libcrypt cannot make a " + std::string(to_string(method)) + " salt");
    auto cd = std::make_unique<CryptData>();
    std::string pw(password);
    const char* out = ::crypt_rn(pw.c_str(), setting, &cd->data, sizeof cd->data);
    wipe(pw);
    if (!out || out[0] == '*')
        throw Error(Exit::software, "libcrypt cannot hash with " + std::string(to_string(method)));
    return out;
}

bool verify_password(std::string_view password, std::string_view hash) {
    if (!is_crypt_hash(hash)) return false;
    auto cd = std::make_unique<CryptData>();
    std::string pw(password), h(hash);
    const char* out = ::crypt_rn(pw.c_str(), h.c_str(), &cd->data, sizeof cd->data);
    wipe(pw);
    if (!out || out[0] == '*') return false;
    std::size_t n = std::strlen(out);
    if (n != h.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(out[i] ^ h[i]);
    return diff == 0;
}

bool is_crypt_hash(std::string_view hash) noexcept {
    if (hash.size() < 13 || hash.size() > 512) return false;
    for (char c : hash)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '$' || c == '.' ||
              c == '/' || c == '=' || c == ',' || c == '+' || c == '-' || c == '_'))
            return false;
    if (hash[0] != '$') return hash.size() == 13;  // traditional DES, still found in old databases
    int r = ::crypt_checksalt(std::string(hash).c_str());
    return r == CRYPT_SALT_OK || r == CRYPT_SALT_METHOD_LEGACY;
}

std::string random_password(std::size_t length) {
    static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    constexpr std::size_t n = sizeof alphabet - 1;
    std::string out;
    while (out.size() < length) {
        unsigned char b[64];
        random_bytes(b, sizeof b);
        for (unsigned char c : b)
            if (c < 256 - 256 % n && out.size() < length) out += alphabet[c % n];  // no modulo bias
    }
    return out;
}

std::optional<std::string> password_problem(std::string_view pw) {
    if (pw.empty()) return "the password is empty";
    if (pw.size() > 128) return "the password is longer than 128 characters";
    for (unsigned char c : pw)
        if (c < 0x20 || c == 0x7f) return "the password contains a control character";
    return std::nullopt;
}

void wipe(std::string& secret) noexcept {
    if (!secret.empty()) ::OPENSSL_cleanse(secret.data(), secret.size());
}

void wipe(char* data, std::size_t size) noexcept {
    if (size) ::OPENSSL_cleanse(data, size);
}

}  // namespace qv
