// TLS over two descriptors with libssl loaded at run time (dlopen). See tls.hpp.
#include "qvmail/tls.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <mutex>

#include "qvmail/error.hpp"

namespace qv {

namespace {

// The libssl (and, through it, libcrypto) functions used, resolved once.
struct Api {
#define QV_SSL_FN(name) decltype(&::name) name = nullptr
    QV_SSL_FN(OPENSSL_init_ssl);
    QV_SSL_FN(TLS_server_method);
    QV_SSL_FN(TLS_client_method);
    QV_SSL_FN(SSL_CTX_new);
    QV_SSL_FN(SSL_CTX_free);
    QV_SSL_FN(SSL_CTX_ctrl);
    QV_SSL_FN(SSL_CTX_set_options);
    QV_SSL_FN(SSL_CTX_use_certificate_chain_file);
    QV_SSL_FN(SSL_CTX_use_PrivateKey_file);
    QV_SSL_FN(SSL_CTX_check_private_key);
    QV_SSL_FN(SSL_new);
    QV_SSL_FN(SSL_free);
    QV_SSL_FN(SSL_set_rfd);
    QV_SSL_FN(SSL_set_wfd);
    QV_SSL_FN(SSL_accept);
    QV_SSL_FN(SSL_connect);
    QV_SSL_FN(SSL_ctrl);
    QV_SSL_FN(SSL_read);
    QV_SSL_FN(SSL_write);
    QV_SSL_FN(SSL_shutdown);
    QV_SSL_FN(SSL_get_error);
    QV_SSL_FN(SSL_pending);
    QV_SSL_FN(SSL_get_version);
    QV_SSL_FN(SSL_get_current_cipher);
    QV_SSL_FN(SSL_CIPHER_get_name);
    QV_SSL_FN(ERR_get_error);
    QV_SSL_FN(ERR_error_string_n);
    QV_SSL_FN(ERR_clear_error);
#undef QV_SSL_FN
    std::string error;  // why it could not be loaded
};

const Api& api() {
    static Api a;
    static std::once_flag once;
    std::call_once(once, [] {
        void* h = ::dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char* e = ::dlerror();
            a.error = std::string("cannot load libssl.so.3: ") + (e ? e : "unknown error");
            return;
        }
        bool ok = true;
        auto get = [&](auto& fn, const char* name) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
            if (!fn && ok) {
                ok = false;
                a.error = std::string("libssl.so.3 has no ") + name;
            }
        };
#define QV_GET(name) get(a.name, #name)
        QV_GET(OPENSSL_init_ssl);
        QV_GET(TLS_server_method);
        QV_GET(TLS_client_method);
        QV_GET(SSL_CTX_new);
        QV_GET(SSL_CTX_free);
        QV_GET(SSL_CTX_ctrl);
        QV_GET(SSL_CTX_set_options);
        QV_GET(SSL_CTX_use_certificate_chain_file);
        QV_GET(SSL_CTX_use_PrivateKey_file);
        QV_GET(SSL_CTX_check_private_key);
        QV_GET(SSL_new);
        QV_GET(SSL_free);
        QV_GET(SSL_set_rfd);
        QV_GET(SSL_set_wfd);
        QV_GET(SSL_accept);
        QV_GET(SSL_connect);
        QV_GET(SSL_ctrl);
        QV_GET(SSL_read);
        QV_GET(SSL_write);
        QV_GET(SSL_shutdown);
        QV_GET(SSL_get_error);
        QV_GET(SSL_pending);
        QV_GET(SSL_get_version);
        QV_GET(SSL_get_current_cipher);
        QV_GET(SSL_CIPHER_get_name);
        QV_GET(ERR_get_error);
        QV_GET(ERR_error_string_n);
        QV_GET(ERR_clear_error);
#undef QV_GET
        if (ok) a.OPENSSL_init_ssl(0, nullptr);
    });
    if (!a.error.empty()) throw Error(Exit::unavailable, a.error);
    return a;
}

// OpenSSL's queued errors as one line.
std::string ssl_errors(const Api& a) {
    std::string out;
    while (unsigned long e = a.ERR_get_error()) {
        char buf[256];
        a.ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "no detail from OpenSSL" : out;
}

}  // namespace

struct TlsStream::Impl {
    const Api* a = nullptr;
    SSL_CTX* ctx = nullptr;
    SSL* ssl = nullptr;
    int rfd = -1, wfd = -1;
    ~Impl() {
        if (ssl) {
            a->SSL_shutdown(ssl);
            a->SSL_free(ssl);
        }
        if (ctx) a->SSL_CTX_free(ctx);
    }
    // Runs an SSL call until it completes, waiting for the descriptors as it asks; its result, or -1
    // with errno ETIMEDOUT after `timeout` seconds.
    template <class Op>
    int drive(Op op, int timeout) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
        for (;;) {
            a->ERR_clear_error();
            int r = op();
            if (r > 0) return r;
            int e = a->SSL_get_error(ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return r;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            pollfd p{e == SSL_ERROR_WANT_READ ? rfd : wfd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
            int n = ::poll(&p, 1, static_cast<int>(left.count()));
            if (n < 0 && errno != EINTR) return -1;
        }
    }
    // The handshake on `rfd` and `wfd` as the server, or as the client naming `sni`. Throws Error.
    void handshake(int r, int w, int timeout, bool as_client, std::string_view sni) {
        rfd = r;
        wfd = w;
        ssl = a->SSL_new(ctx);
        if (!ssl) throw Error(Exit::unavailable, "cannot start TLS: " + ssl_errors(*a));
        for (int fd : {rfd, wfd}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        a->SSL_set_rfd(ssl, rfd);
        a->SSL_set_wfd(ssl, wfd);
        if (as_client && !sni.empty()) {
            std::string name(sni);  // SSL_set_tlsext_host_name, a macro over SSL_ctrl
            a->SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name.data());
        }
        errno = 0;
        int rc = drive([&] { return as_client ? a->SSL_connect(ssl) : a->SSL_accept(ssl); }, timeout);
        if (rc != 1) {
            std::string why = errno == ETIMEDOUT && rc < 0 ? "timed out" : ssl_errors(*a);
            a->SSL_free(ssl);  // no close_notify after a failed handshake
            ssl = nullptr;
            throw Error(Exit::ioerr, "TLS handshake failed: " + why);
        }
    }
};

std::unique_ptr<TlsStream> TlsStream::server(const std::filesystem::path& pem) {
    const Api& a = api();
    std::unique_ptr<TlsStream> s(new TlsStream);
    s->impl_ = std::make_unique<Impl>();
    Impl& t = *s->impl_;
    t.a = &a;
    t.ctx = a.SSL_CTX_new(a.TLS_server_method());
    if (!t.ctx) throw Error(Exit::unavailable, "cannot make a TLS context: " + ssl_errors(a));
    a.SSL_CTX_ctrl(t.ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
    a.SSL_CTX_set_options(t.ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (a.SSL_CTX_use_certificate_chain_file(t.ctx, pem.c_str()) != 1 ||
        a.SSL_CTX_use_PrivateKey_file(t.ctx, pem.c_str(), SSL_FILETYPE_PEM) != 1 ||
        a.SSL_CTX_check_private_key(t.ctx) != 1)
        throw Error(Exit::config, pem.string() + ": not a usable certificate and key: " + ssl_errors(a));
    return s;
}

void TlsStream::accept(int rfd, int wfd, int timeout) {
    impl_->handshake(rfd, wfd, timeout, false, {});
}

std::unique_ptr<TlsStream> TlsStream::client() {
    const Api& a = api();
    std::unique_ptr<TlsStream> s(new TlsStream);
    s->impl_ = std::make_unique<Impl>();
    Impl& t = *s->impl_;
    t.a = &a;
    t.ctx = a.SSL_CTX_new(a.TLS_client_method());
    if (!t.ctx) throw Error(Exit::unavailable, "cannot make a TLS context: " + ssl_errors(a));
    // SSL_VERIFY_NONE, the default: the handshake does not depend on the certificate
    a.SSL_CTX_set_options(t.ctx, SSL_OP_NO_RENEGOTIATION);
    return s;
}

void TlsStream::connect(int rfd, int wfd, int timeout, std::string_view sni) {
    impl_->handshake(rfd, wfd, timeout, true, sni);
}

TlsStream::~TlsStream() = default;

ssize_t TlsStream::read(char* buf, std::size_t size, int timeout) {
    Impl& t = *impl_;
    int n = t.drive([&] { return t.a->SSL_read(t.ssl, buf, static_cast<int>(std::min<std::size_t>(size, 1 << 30))); },
                    timeout);
    if (n > 0) return n;
    if (errno == ETIMEDOUT && n < 0) return -1;
    return t.a->SSL_get_error(t.ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

bool TlsStream::write(std::string_view data, int timeout) {
    Impl& t = *impl_;
    while (!data.empty()) {
        int n = t.drive([&] {
            return t.a->SSL_write(t.ssl, data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30)));
        }, timeout);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string TlsStream::protocol() const {
    return impl_->a->SSL_get_version(impl_->ssl);
}

std::string TlsStream::cipher() const {
    const char* c = impl_->a->SSL_CIPHER_get_name(impl_->a->SSL_get_current_cipher(impl_->ssl));
    return c ? c : "";
}

}  // namespace qv
