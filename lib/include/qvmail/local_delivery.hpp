// Local delivery for virtual domains: what qmail-local, vdelivermail and vfilter do together with one
// message for one address of a virtual domain. qmail-send runs it in-process (its delivery threads),
// and the vdelivermail and vfilter programs run it for a .qmail-default line, so both give the same
// result for the same mail.
//
// The address is decided as qmail-smtpd decides it at RCPT time (resolve_virtual_recipient):
//   a mailbox       the mail goes to <home>/Maildir (Return-Path and Delivered-To lines first), unless
//                   it already carries that Delivered-To line (a loop: permanent failure) or the mailbox
//                   is over its quota (Maildir++ maildirsize: a temporary failure, so that it bounces
//                   only after queuelifetime). With vfilter (the domain's .qmail-default runs vfilter, or
//                   the vfilter program runs), the filter rules decide first: a folder (Maildir/.<name>),
//                   /NoDeliver (dropped), a copy to an address or a program, a bounce to the sender.
//   an alias        each line of .qmail-<alias> (or the store's valias rows): &address or address
//                   forwards, /path/ delivers into that Maildir, |command runs it with /bin/sh (exit 0
//                   done, 99 done and stop, 64 65 70 76 77 78 100 112 permanent as qmail-command(8) has
//                   it, anything else temporary), # a comment. A message that already has the address's
//                   Delivered-To line is a loop, refused before any line runs.
//   anybody else    the domain's handler (.qmail-default): delete, bounce-no-mailbox, a Maildir path, an
//                   address (forward), domain:host:port (qmail-remote with SMTPROUTE set); a .qmail-default
//                   qvmail did not write is run line by line as an alias's.
// A forward queues one new message (Delivered-To line added, the envelope sender kept) for all the
// addresses of the delivery. Every failure to write is temporary: the mail stays queued.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/atomic_file.hpp"

namespace qv {

struct Paths;
class Store;
class GroupSync;

struct DeliveryOutcome {
    enum Kind { success, temporary, permanent } kind = success;
    std::string text;  // one or more lines, for the log and the bounce
};
const char* to_string(DeliveryOutcome::Kind k) noexcept;  // "success", "deferral", "failure"

struct LocalMessage {
    int fd = -1;       // the message, readable with pread from `offset` (a queue file, or a copy of stdin)
    off_t offset = 0;
    std::uint64_t size = 0;  // bytes from `offset`
    std::string sender;      // the envelope sender ("" for a bounce)
};

struct LocalOptions {
    GroupSync* group = nullptr;  // make writes durable through a group commit; nullptr: each fsyncs its own
    // With a group: the Maildirs whose new names are not yet durable are added here instead of waited
    // for (the caller flushes them before it counts the delivery done); nullptr: waited for.
    std::vector<std::filesystem::path>* unsynced_names = nullptr;
    bool qmail_ext = false;      // QMAIL_EXT: joe-ext falls back to joe
    bool filters = false;        // apply the filter rules whatever .qmail-default runs (the vfilter program)
    std::string remote_program;  // qmail-remote, for domain:host:port handlers (empty: beside this program)
    std::optional<std::string> handler;  // the handler vdelivermail was given, instead of .qmail-default's
    std::optional<Owner> program_owner;  // who runs |command lines (qmail-send as root: the domain's owner)
    std::optional<Owner> remote_owner;   // who runs qmail-remote for a domain:host:port handler
};

// Delivers `m` to local@domain (as given: compared without regard to case; an empty local part is
// postmaster). `store` is asked only for domains of ours. Never throws: a failure is an outcome.
DeliveryOutcome deliver_virtual(const Paths& paths, const std::function<Store&()>& store, std::string_view local,
                                std::string_view domain, const LocalMessage& m, const LocalOptions& o);

// Queues a copy of `m` with `head` before it, from m.sender to `recipients` (a forward, a bounce...).
// `env`: the queue program's environment, when one runs (see QueueSubmission::open). Returns "" when
// queued, else qmail's "D..."/"Z..." text.
std::string inject_copy(const Paths& paths, const LocalMessage& m, std::string_view head,
                        const std::vector<std::string>& recipients, const std::vector<std::string>* env = nullptr);

// Reads the whole message (at most `limit` bytes) from its descriptor.
std::string read_message(const LocalMessage& m, std::size_t limit);

}  // namespace qv
