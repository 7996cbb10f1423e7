#pragma once
// `ringdp-data inspect FILE`: what is in an HDF5 file, and whether its labels are valid.

#include <ostream>
#include <string>

/// Prints every dataset of `path` (shape, type, chunking, filters) and, for each dataset
/// whose name ends in "labels", a class histogram and a check against the number of
/// classes (`classes` if > 0, else its "classes" attribute, else max + 1). Returns the
/// number of problems found (0 = fine). Throws ringdp::IoError when the file cannot be read.
int inspect_file(const std::string& path, int classes, std::ostream& out);
