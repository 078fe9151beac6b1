// What a virtual domain does with mail for one of its addresses, decided as the delivery path decides
// it (qmail-local's .qmail files, then vdelivermail): a mailbox, an alias, or the domain's unknown-user
// handler in .qmail-default. qmail-smtpd asks it at RCPT time, so that mail nobody would take is
// refused there (550 5.1.1) instead of accepted and bounced later (backscatter).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "qvmail/store.hpp"

namespace qv {

struct Paths;
struct Domain;

struct VirtualRecipient {
    enum Kind {
        mailbox,  // a mailbox of the store (or, with QMAIL_EXT, the one before the extension)
        alias,    // an alias (.qmail-<name> or the store's valias), or a .qmail-<prefix>-default
        handler,  // nobody of that name, but .qmail-default takes the mail (delete, a Maildir, a forward, a route,
                  // or a line qvmail did not write); or more extensions than are looked up (taken unchecked)
        nobody,   // nobody of that name, and the handler bounces it (bounce-no-mailbox), or no .qmail-default
    } kind = nobody;
    std::string detail;  // the mailbox or alias name, or the handler
    std::optional<UserRecord> user;  // the mailbox's record, as the store gave it (kind mailbox)
    bool deliverable() const noexcept { return kind != nobody; }
};

// `local` and `domain` as they came (compared case-insensitively). nullopt when `domain` is not one of
// our virtual domains (users/assign); only then is `store` called, for the store to ask (so that mail
// for other domains never opens a database connection). With `qmail_ext` (vdelivermail's QMAIL_EXT),
// "joe-ext" falls back to joe. Throws Error when the store or the domain's files cannot be read (a
// temporary failure).
std::optional<VirtualRecipient> resolve_virtual_recipient(const Paths& paths, const std::function<Store&()>& store,
                                                          std::string_view local, std::string_view domain,
                                                          bool qmail_ext = false);
// The same for a domain already found (`local` as it came).
VirtualRecipient resolve_virtual_recipient(const std::function<Store&()>& store, const Domain& domain, std::string_view local,
                                           bool qmail_ext = false);

}  // namespace qv
