// How long work tells how far it has come: a library function that may take more than a few seconds
// (a queue scan, a check over thousands of domains, a purge of a big relay table) takes one of these and
// calls it now and then; the command shows it on a terminal (qv::Progress in cli.hpp), or not at all.
#pragma once

#include <cstdint>
#include <functional>

namespace qv {

// `done` of `total` units so far (total 0: not known). An empty function is fine: nobody is told.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

}  // namespace qv
