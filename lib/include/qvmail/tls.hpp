// TLS for the MTA programs (STARTTLS in qmail-smtpd, and the client side in qmail-remote), with OpenSSL's
// libssl loaded only when a session starts: tcpserver execs qmail-smtpd for every connection, and
// loading libssl and libcrypto at every exec costs more than the rest of a short SMTP session together.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace qv {

class TlsStream {
public:
    // A server ready for a handshake, with the certificate chain and the private key from `pem` (both
    // in one file, as qmail's control/servercert.pem). TLS 1.2 or later. Throws Error 69 when libssl
    // cannot be loaded, 78 when the certificate or key cannot be used: before the client is told to
    // start, so that it may be told no.
    static std::unique_ptr<TlsStream> server(const std::filesystem::path& pem);
    // The server side of the handshake on descriptors `rfd` and `wfd` (qmail-smtpd's 0 and 1). Throws
    // Error 74 when it fails or times out.
    void accept(int rfd, int wfd, int timeout_seconds);

    // A client for opportunistic TLS, as qmail's TLS patches do by default: the server's certificate is
    // not verified (any encryption is better than none, and a check that fails would only make the mail
    // go in clear or not at all). Throws Error 69 when libssl cannot be loaded.
    static std::unique_ptr<TlsStream> client();
    // The client side of the handshake on `rfd` and `wfd` (qmail-remote's socket, both), naming `sni`
    // to the server when it is not empty. Throws Error 74 when it fails or times out.
    void connect(int rfd, int wfd, int timeout_seconds, std::string_view sni);
    ~TlsStream();  // sends close_notify
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    // Up to `size` bytes: > 0 read, 0 at the end of the session, -1 on an error or after
    // `timeout_seconds` without data (errno ETIMEDOUT then).
    ssize_t read(char* buf, std::size_t size, int timeout_seconds);
    // Whether all of `data` was written.
    bool write(std::string_view data, int timeout_seconds);
    std::string protocol() const;  // "TLSv1.3"
    std::string cipher() const;

private:
    TlsStream() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace qv
