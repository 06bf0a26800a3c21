/* The raster hot loops in C: PWG/URF line decoding, PackBits and PCL delta-row encoding.
 *
 * Each function is the exact equivalent of its pure-Python reference (drivers/filters/linecodec.py
 * decode_line, drivers/model/packbits.py packbits and packbits_bilevel, drivers/languages/pcl.py
 * _delta_row), which stays the specification: same output bytes, same exceptions. The input
 * comes from the network, so every read is checked against the buffer and every write against
 * the output allocated for it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Raised for packets that do not add up to the line; the Python class is set at import. */
static PyObject *line_overflow_class = NULL;

/* Beyond this a packet size computation could overflow Py_ssize_t; no raster is near it. */
#define MAX_UNIT ((Py_ssize_t)1 << 20)
/* Lines longer than this are checked before their bytes are allocated. */
#define DRY_RUN_ABOVE ((Py_ssize_t)1 << 24)

typedef enum { LINE_OK, LINE_TRUNCATED, LINE_OVERFLOW } LineStatus;

/* One line being decoded. `written` counts what the Python reference would have appended,
 * which can exceed `size` in a bad line; bytes past `size` (or all, when `out` is NULL) are
 * counted but not stored. */
typedef struct {
    const unsigned char *data;
    Py_ssize_t length;
    Py_ssize_t pos;
    Py_ssize_t size;
    Py_ssize_t unit;
    unsigned char fill;
    unsigned char *out;
    Py_ssize_t written;
    Py_ssize_t done;
} LineDecoder;

static void
store_copy(LineDecoder *d, const unsigned char *source, Py_ssize_t count)
{
    if (d->out != NULL && d->written < d->size) {
        Py_ssize_t room = d->size - d->written;
        memcpy(d->out + d->written, source, (size_t)(count < room ? count : room));
    }
    d->written += count;
}

static void
store_fill(LineDecoder *d, unsigned char value, Py_ssize_t count)
{
    if (d->out != NULL && d->written < d->size) {
        Py_ssize_t room = d->size - d->written;
        memset(d->out + d->written, value, (size_t)(count < room ? count : room));
    }
    d->written += count;
}

/* `count` bytes at `source` repeated `times` times, by doubling what is already stored. */
static void
store_repeat(LineDecoder *d, const unsigned char *source, Py_ssize_t count, Py_ssize_t times)
{
    Py_ssize_t total = count * times;
    if (d->out != NULL && d->written < d->size && count > 0) {
        Py_ssize_t room = d->size - d->written;
        Py_ssize_t limit = total < room ? total : room;
        unsigned char *target = d->out + d->written;
        Py_ssize_t filled = limit < count ? limit : count;
        memcpy(target, source, (size_t)filled);
        while (filled < limit) {
            Py_ssize_t step = filled < limit - filled ? filled : limit - filled;
            memcpy(target + filled, target, (size_t)step);  /* never overlaps: step <= filled */
            filled += step;
        }
    }
    d->written += total;
}

/* Bytes of data[start:start + want], clipped to the buffer as a Python slice is. */
static Py_ssize_t
available(const LineDecoder *d, Py_ssize_t start, Py_ssize_t want)
{
    Py_ssize_t left = d->length - start;
    if (left <= 0) {
        return 0;
    }
    return want < left ? want : left;
}

/* Packet of one-byte units; mirrors the `unit == 1` branch of the reference. */
static LineStatus
byte_packet(LineDecoder *d, unsigned char control)
{
    if (control < 128) {
        if (d->pos + 1 >= d->length) {
            return LINE_TRUNCATED;  /* data[pos + 1] raises IndexError */
        }
        store_fill(d, d->data[d->pos + 1], control + 1);
        d->pos += 2;
        d->done += control + 1;
    }
    else if (control > 128) {
        Py_ssize_t count = 257 - control;
        store_copy(d, d->data + d->pos + 1, available(d, d->pos + 1, count));
        d->done += count;
        d->pos += 1 + count;
    }
    else {
        store_fill(d, d->fill, d->size - d->done);
        d->pos += 1;
        d->done = d->size;
    }
    return LINE_OK;
}

/* Packet of multi-byte units; a short final unit repeats short, as a Python slice does. */
static void
unit_packet(LineDecoder *d, unsigned char control)
{
    Py_ssize_t start = d->pos + 1;
    if (control < 128) {
        store_repeat(d, d->data + start, available(d, start, d->unit), control + 1);
        d->done += d->unit * (control + 1);
        d->pos = start + d->unit;
    }
    else if (control > 128) {
        Py_ssize_t want = d->unit * (257 - control);
        store_copy(d, d->data + start, available(d, start, want));
        d->done += want;
        d->pos = start + want;
    }
    else {
        store_fill(d, d->fill, d->size - d->done);
        d->done = d->size;
        d->pos = start;
    }
}

static LineStatus
decode_packets(LineDecoder *d)
{
    d->written = 0;
    d->done = 0;
    while (d->done < d->size) {
        if (d->pos >= d->length) {
            return LINE_TRUNCATED;  /* data[pos] raises IndexError */
        }
        unsigned char control = d->data[d->pos];
        if (d->unit == 1) {
            if (byte_packet(d, control) != LINE_OK) {
                return LINE_TRUNCATED;
            }
        }
        else {
            unit_packet(d, control);
        }
    }
    if (d->written != d->size) {
        /* done == size here means a literal ran past the end of the data */
        return d->done == d->size ? LINE_TRUNCATED : LINE_OVERFLOW;
    }
    return LINE_OK;
}

/* Decodes one line at d->pos into a new bytes object; NULL with status set on failure. */
static PyObject *
decode_one(LineDecoder *d, LineStatus *status)
{
    if (d->size > DRY_RUN_ABOVE) {
        /* Check first: a bad line must raise as the reference does, not fail to allocate. */
        Py_ssize_t start = d->pos;
        d->out = NULL;
        *status = decode_packets(d);
        if (*status != LINE_OK) {
            return NULL;
        }
        d->pos = start;
    }
    PyObject *line = PyBytes_FromStringAndSize(NULL, d->size > 0 ? d->size : 0);
    if (line == NULL) {
        *status = LINE_OK;  /* a Python error (MemoryError) is set */
        return NULL;
    }
    d->out = (unsigned char *)PyBytes_AS_STRING(line);
    *status = decode_packets(d);
    if (*status != LINE_OK) {
        Py_DECREF(line);
        return NULL;
    }
    return line;
}

static void
raise_line_error(const LineDecoder *d, LineStatus status)
{
    if (status == LINE_TRUNCATED) {
        PyErr_SetString(PyExc_IndexError, "line data ends early");
        return;
    }
    PyObject *kind = line_overflow_class != NULL ? line_overflow_class : PyExc_ValueError;
    PyErr_Format(kind, "packets make %zd bytes in a line of %zd", d->done, d->size);
}

static int
as_ssize(PyObject *value, Py_ssize_t *result)
{
    *result = PyLong_AsSsize_t(value);
    return *result == -1 && PyErr_Occurred() ? -1 : 0;
}

/* Shared argument checks: (data, pos, size, unit, fill) of decode_line and decode_band. */
static int
parse_line_args(PyObject *const *args, Py_buffer *view, LineDecoder *d)
{
    Py_ssize_t fill;
    if (as_ssize(args[1], &d->pos) || as_ssize(args[2], &d->size)
        || as_ssize(args[3], &d->unit) || as_ssize(args[4], &fill)) {
        return -1;
    }
    if (d->pos < 0 || d->unit < 1 || d->unit > MAX_UNIT || fill < 0 || fill > 255
        || d->size > PY_SSIZE_T_MAX / 2) {
        PyErr_SetString(PyExc_ValueError,
                        "need pos >= 0, size < 2**62, 1 <= unit <= 2**20, 0 <= fill <= 255");
        return -1;
    }
    if (PyObject_GetBuffer(args[0], view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    d->data = (const unsigned char *)view->buf;
    d->length = view->len;
    d->fill = (unsigned char)fill;
    return 0;
}

PyDoc_STRVAR(decode_line_doc,
"decode_line(data, pos, size, unit, fill) -> (line, newpos)\n\n"
"Decode the packets of one line of `size` bytes starting at `pos`. Raises IndexError when\n"
"`data` ends inside the line and LineOverflow when the packets do not add up to the line.");

static PyObject *
decode_line(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "decode_line() takes 5 arguments");
        return NULL;
    }
    Py_buffer view;
    LineDecoder d;
    if (parse_line_args(args, &view, &d) < 0) {
        return NULL;
    }
    LineStatus status;
    PyObject *line = decode_one(&d, &status);
    PyBuffer_Release(&view);
    if (line == NULL) {
        if (status != LINE_OK) {
            raise_line_error(&d, status);
        }
        return NULL;
    }
    PyObject *result = Py_BuildValue("(Nn)", line, d.pos);
    return result;
}

/* Appends (line, repeat) to rows; returns -1 on a Python error. */
static int
append_row(PyObject *rows, PyObject *line, long repeat)
{
    PyObject *row = Py_BuildValue("(Nl)", line, repeat);
    if (row == NULL) {
        return -1;
    }
    int failed = PyList_Append(rows, row);
    Py_DECREF(row);
    return failed;
}

PyDoc_STRVAR(decode_band_doc,
"decode_band(data, pos, size, unit, fill, max_rows, lines_left, stop_after)\n"
"    -> (rows, newpos, lines)\n\n"
"Decode up to `max_rows` records (repeat byte + packets) into (line, repeat) rows, stopping\n"
"before `lines_left` lines would be exceeded, when pos passes `stop_after`, and before any\n"
"record that is truncated or malformed: the caller decodes that one itself to raise.");

static PyObject *
decode_band(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_ssize_t max_rows, lines_left, stop_after;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "decode_band() takes 8 arguments");
        return NULL;
    }
    if (as_ssize(args[5], &max_rows) || as_ssize(args[6], &lines_left)
        || as_ssize(args[7], &stop_after)) {
        return NULL;
    }
    Py_buffer view;
    LineDecoder d;
    if (parse_line_args(args, &view, &d) < 0) {
        return NULL;
    }
    PyObject *rows = PyList_New(0);
    Py_ssize_t lines = 0;
    while (rows != NULL && PyList_GET_SIZE(rows) < max_rows && lines < lines_left) {
        Py_ssize_t start = d.pos;
        if (start > stop_after || start >= d.length) {
            break;
        }
        long repeat = (long)d.data[start] + 1;
        if (repeat > lines_left - lines) {
            break;
        }
        d.pos = start + 1;
        LineStatus status;
        PyObject *line = decode_one(&d, &status);
        if (line == NULL) {
            if (status == LINE_OK) {
                Py_CLEAR(rows);  /* MemoryError */
            }
            d.pos = start;
            break;
        }
        if (append_row(rows, line, repeat) < 0) {
            Py_CLEAR(rows);
            break;
        }
        lines += repeat;
    }
    PyBuffer_Release(&view);
    if (rows == NULL) {
        return NULL;
    }
    return Py_BuildValue("(Nnn)", rows, d.pos, lines);
}

/* ---- PackBits ---------------------------------------------------------------------------- */

/* Literals are short in 1-bit rows: eight bytes a move, where a memcpy of a length known to be
 * at most 128 compiles to a `rep movs` that costs more to start than the copy. */
static void
copy_short(unsigned char *out, const unsigned char *in, Py_ssize_t count)
{
    for (; count >= 8; count -= 8, out += 8, in += 8) {
        memcpy(out, in, 8);
    }
    for (; count > 0; count--) {
        *out++ = *in++;
    }
}

static unsigned char *
put_literal(unsigned char *out, const unsigned char *start, Py_ssize_t count)
{
    while (count > 0) {
        Py_ssize_t take = count < 128 ? count : 128;
        *out++ = (unsigned char)(take - 1);
        copy_short(out, start, take);
        out += take;
        start += take;
        count -= take;
    }
    return out;
}

static unsigned char *
put_run(unsigned char *out, unsigned char value, Py_ssize_t length)
{
    while (length > 128) {
        *out++ = 0x81;
        *out++ = value;
        length -= 128;
    }
    /* A lone byte left over goes as a one-byte literal, as the reference's table has it. */
    *out++ = length == 1 ? 0 : (unsigned char)(257 - length);
    *out++ = value;
    return out;
}

/* Worst case of packbits_into: all literal, one head byte per 128. */
static Py_ssize_t
packbits_bound(Py_ssize_t n)
{
    return n + n / 128 + 2;
}

/* Where the next run (3 or more equal bytes; bilevel: of 0x00 or 0xFF only) starts at or after
 * `i`, or `n`. The tests are combined without branches: in a literal stretch which of them
 * fails is unpredictable. */
static Py_ssize_t
next_run(const unsigned char *in, Py_ssize_t i, Py_ssize_t n, int bilevel)
{
    for (; i + 2 < n; i++) {
        unsigned char value = in[i];
        int repeats = (value == in[i + 1]) & (value == in[i + 2]);
        if (bilevel) {
            repeats &= (unsigned char)(value + 1) <= 1;
        }
        if (repeats) {
            return i;
        }
    }
    return n;
}

/* End of the run of `value` continuing at `end`, eight bytes at a time while it lasts. */
static Py_ssize_t
run_end(const unsigned char *in, Py_ssize_t end, Py_ssize_t n, unsigned char value)
{
    const uint64_t pattern = value * UINT64_C(0x0101010101010101);
    uint64_t word;
    while (end + 8 <= n) {
        memcpy(&word, in + end, sizeof word);
        if (word != pattern) {
            break;
        }
        end += 8;
    }
    while (end < n && in[end] == value) {
        end++;
    }
    return end;
}

/* Runs are repeats, the rest literal, which is what the reference's leftmost-longest regular
 * expression finds. Writes at most packbits_bound(n) bytes. */
static unsigned char *
packbits_into(unsigned char *out, const unsigned char *in, Py_ssize_t n, int bilevel)
{
    Py_ssize_t literal = 0, i = 0;
    while ((i = next_run(in, i, n, bilevel)) < n) {
        Py_ssize_t end = run_end(in, i + 3, n, in[i]);
        out = put_literal(out, in + literal, i - literal);
        out = put_run(out, in[i], end - i);
        i = literal = end;
    }
    return put_literal(out, in + literal, n - literal);
}

static PyObject *
encode_packbits(PyObject *args, int bilevel)
{
    Py_buffer view;
    if (!PyArg_ParseTuple(args, bilevel ? "y*:packbits_bilevel" : "y*:packbits", &view)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (view.len <= PY_SSIZE_T_MAX / 2) {
        result = PyBytes_FromStringAndSize(NULL, packbits_bound(view.len));
    }
    else {
        PyErr_NoMemory();
    }
    if (result != NULL) {
        unsigned char *begin = (unsigned char *)PyBytes_AS_STRING(result);
        unsigned char *out = packbits_into(begin, view.buf, view.len, bilevel);
        if (_PyBytes_Resize(&result, out - begin) < 0) {
            result = NULL;
        }
    }
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(packbits_doc, "packbits(data) -> bytes\n\nTIFF PackBits, runs of any byte.");

static PyObject *
packbits(PyObject *module, PyObject *args)
{
    (void)module;
    return encode_packbits(args, 0);
}

PyDoc_STRVAR(packbits_bilevel_doc,
"packbits_bilevel(data) -> bytes\n\nTIFF PackBits where only runs of 0x00 and 0xFF repeat.");

static PyObject *
packbits_bilevel(PyObject *module, PyObject *args)
{
    (void)module;
    return encode_packbits(args, 1);
}

/* ---- PCL delta row (mode 3) -------------------------------------------------------------- */

typedef struct {
    const unsigned char *row, *seed;
    Py_ssize_t row_len, seed_len;
} RowPair;

static int
differs(const RowPair *p, Py_ssize_t i)
{
    unsigned char a = i < p->row_len ? p->row[i] : 0;
    unsigned char b = i < p->seed_len ? p->seed[i] : 0;
    return a != b;
}

static unsigned char
row_byte(const RowPair *p, Py_ssize_t i)
{
    return i < p->row_len ? p->row[i] : 0;
}

/* End of the changed stretch starting at `start`: gaps of one or two equal bytes merge. */
static Py_ssize_t
changed_end(const RowPair *p, Py_ssize_t start, Py_ssize_t width)
{
    Py_ssize_t end = start + 1;
    for (;;) {
        while (end < width && differs(p, end)) {
            end++;
        }
        Py_ssize_t next = end;
        while (next < width && next - end < 3 && !differs(p, next)) {
            next++;
        }
        if (next == end || next - end >= 3 || next >= width) {
            return end;
        }
        end = next;
    }
}

static unsigned char *
put_changes(unsigned char *out, const RowPair *p, Py_ssize_t start, Py_ssize_t end,
            Py_ssize_t *pos)
{
    while (start < end) {
        Py_ssize_t take = end - start < 8 ? end - start : 8;
        Py_ssize_t offset = start - *pos;
        *out++ = (unsigned char)((take - 1) << 5 | (offset < 31 ? offset : 31));
        if (offset >= 31) {
            offset -= 31;
            while (offset >= 255) {
                *out++ = 255;
                offset -= 255;
            }
            *out++ = (unsigned char)offset;
        }
        for (Py_ssize_t i = 0; i < take; i++) {
            *out++ = row_byte(p, start + i);
        }
        start += take;
        *pos = start;
    }
    return out;
}

/* Worst case of delta_into for rows up to `width` bytes: per changed byte at most a command and
 * the byte; offsets add one byte per 255 skipped plus one per stretch, and stretches are at
 * least 4 bytes apart. Negative when that does not fit a Py_ssize_t. */
static Py_ssize_t
delta_bound(Py_ssize_t width)
{
    return width <= PY_SSIZE_T_MAX / 4 ? 3 * width + 16 : -1;
}

static unsigned char *
delta_into(unsigned char *out, const RowPair *p)
{
    Py_ssize_t width = p->row_len > p->seed_len ? p->row_len : p->seed_len;
    Py_ssize_t pos = 0, i = 0;
    while (i < width) {
        if (!differs(p, i)) {
            i++;
            continue;
        }
        Py_ssize_t end = changed_end(p, i, width);
        out = put_changes(out, p, i, end, &pos);
        i = end;
    }
    return out;
}

PyDoc_STRVAR(delta_row_doc,
"delta_row(row, seed) -> bytes\n\n"
"PCL compression mode 3: the bytes of `row` that differ from `seed`, in commands of up to 8.");

static PyObject *
delta_row(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer row, seed;
    if (!PyArg_ParseTuple(args, "y*y*:delta_row", &row, &seed)) {
        return NULL;
    }
    RowPair p = {row.buf, seed.buf, row.len, seed.len};
    Py_ssize_t bound = delta_bound(row.len > seed.len ? row.len : seed.len);
    PyObject *result = NULL;
    if (bound >= 0) {
        result = PyBytes_FromStringAndSize(NULL, bound);
    }
    else {
        PyErr_NoMemory();
    }
    if (result != NULL) {
        unsigned char *begin = (unsigned char *)PyBytes_AS_STRING(result);
        unsigned char *out = delta_into(begin, &p);
        if (_PyBytes_Resize(&result, out - begin) < 0) {
            result = NULL;
        }
    }
    PyBuffer_Release(&row);
    PyBuffer_Release(&seed);
    return result;
}

/* ---- PCL raster bands (drivers/languages/pcl.py _pcl_band_py) ---------------------------- */

/* The longest command: ESC * b, 19 digits, the letter. */
#define COMMAND_MAX 32

/* One band being written: the output so far and PclRasterWriter's state between rows. */
typedef struct {
    PyObject *out;  /* bytes, resized as it fills; NULL after a failed resize */
    Py_ssize_t used;
    Py_ssize_t crop, compression, blank_rows;
    Py_buffer seed_view;  /* holds the seed row's bytes; .obj is NULL for the empty seed */
    const unsigned char *seed;
    Py_ssize_t seed_len;
    int seed_changed;
} PclBand;

/* Where `extra` more bytes go at the end of the output; NULL with MemoryError set. */
static unsigned char *
band_reserve(PclBand *b, Py_ssize_t extra)
{
    if (extra < 0 || extra > PY_SSIZE_T_MAX - b->used) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t need = b->used + extra, size = PyBytes_GET_SIZE(b->out);
    if (need > size) {
        Py_ssize_t grown = size <= PY_SSIZE_T_MAX / 2 ? 2 * size : PY_SSIZE_T_MAX;
        if (_PyBytes_Resize(&b->out, grown > need ? grown : need) < 0) {
            return NULL;
        }
    }
    return (unsigned char *)PyBytes_AS_STRING(b->out) + b->used;
}

/* ESC * b <value> <letter>, the value in decimal as b"%d" writes it (value >= 0). */
static unsigned char *
put_command(unsigned char *out, Py_ssize_t value, char letter)
{
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    *out++ = 0x1B;
    *out++ = '*';
    *out++ = 'b';
    while (count > 0) {
        *out++ = (unsigned char)digits[--count];
    }
    *out++ = (unsigned char)letter;
    return out;
}

/* The encoding was written COMMAND_MAX bytes after `out`: its ESC*b#W header goes in front. */
static Py_ssize_t
put_transfer(unsigned char *out, Py_ssize_t length)
{
    unsigned char *body = put_command(out, length, 'W');
    memmove(body, out + COMMAND_MAX, (size_t)length);
    return body + length - out;
}

static void
drop_seed(PclBand *b)
{
    if (b->seed_view.obj != NULL) {
        PyBuffer_Release(&b->seed_view);  /* sets .obj to NULL */
    }
    b->seed = NULL;
    b->seed_len = 0;
    b->seed_changed = 1;
}

/* The row in `view` becomes the seed; the band takes over the view. */
static void
take_seed(PclBand *b, Py_buffer *view, Py_ssize_t start, Py_ssize_t length)
{
    drop_seed(b);
    b->seed_view = *view;
    b->seed = (const unsigned char *)view->buf + start;
    b->seed_len = length;
}

static int
flush_blank_rows(PclBand *b)
{
    if (b->blank_rows == 0) {
        return 0;
    }
    unsigned char *out = band_reserve(b, COMMAND_MAX);
    if (out == NULL) {
        return -1;
    }
    b->used += put_command(out, b->blank_rows, 'Y') - out;
    b->blank_rows = 0;
    drop_seed(b);
    return 0;
}

/* Mode 2: the PackBits row, whole, `count` times. */
static int
put_packbits_rows(PclBand *b, const unsigned char *data, Py_ssize_t length, Py_ssize_t count)
{
    if (count == 0) {
        return 0;
    }
    if (length > PY_SSIZE_T_MAX / 2) {
        PyErr_NoMemory();
        return -1;
    }
    unsigned char *out = band_reserve(b, COMMAND_MAX + packbits_bound(length));
    if (out == NULL) {
        return -1;
    }
    unsigned char *encoded = out + COMMAND_MAX;
    Py_ssize_t row = put_transfer(out, packbits_into(encoded, data, length, 1) - encoded);
    b->used += row;
    if (count - 1 > PY_SSIZE_T_MAX / row) {
        PyErr_NoMemory();
        return -1;
    }
    unsigned char *copies = band_reserve(b, row * (count - 1));
    if (copies == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < count - 1; i++) {
        memcpy(copies + i * row, copies - row, (size_t)row);
    }
    b->used += row * (count - 1);
    return 0;
}

/* Mode 3: the row against the seed, then an empty transfer per repeat (it repeats the seed). */
static int
put_delta_rows(PclBand *b, const unsigned char *data, Py_ssize_t length, Py_ssize_t count)
{
    RowPair pair = {data, b->seed, length, b->seed_len};
    static const unsigned char empty_row[] = "\x1b*b0W";
    const Py_ssize_t size = (Py_ssize_t)sizeof(empty_row) - 1;
    Py_ssize_t bound = delta_bound(length > b->seed_len ? length : b->seed_len);
    Py_ssize_t repeats = count > 1 ? count - 1 : 0;
    if (bound < 0 || repeats > PY_SSIZE_T_MAX / size) {
        PyErr_NoMemory();
        return -1;
    }
    unsigned char *out = band_reserve(b, COMMAND_MAX + bound);
    if (out == NULL) {
        return -1;
    }
    unsigned char *encoded = out + COMMAND_MAX;
    b->used += put_transfer(out, delta_into(encoded, &pair) - encoded);
    unsigned char *copies = band_reserve(b, size * repeats);
    if (copies == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < repeats; i++) {
        memcpy(copies + i * size, empty_row, (size_t)size);
    }
    b->used += size * repeats;
    return 0;
}

/* The (line, count) pair of a row; -1 with an exception for anything the writer never gets. */
static int
parse_row(PyObject *row, PyObject **line, Py_ssize_t *count)
{
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 2
        || !PyLong_Check(PyTuple_GET_ITEM(row, 1))) {
        PyErr_SetString(PyExc_TypeError, "rows must be (line, count) tuples");
        return -1;
    }
    *line = PyTuple_GET_ITEM(row, 0);
    if (as_ssize(PyTuple_GET_ITEM(row, 1), count) < 0) {
        return -1;
    }
    if (*count < 0) {
        PyErr_SetString(PyExc_ValueError, "row counts must be >= 0");
        return -1;
    }
    return 0;
}

static int
band_row(PclBand *b, PyObject *row)
{
    PyObject *line;
    Py_ssize_t count;
    Py_buffer view;
    if (parse_row(row, &line, &count) < 0
        || PyObject_GetBuffer(line, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t start = b->crop < view.len ? b->crop : view.len, end = view.len;
    while (end > start && data[end - 1] == 0) {
        end--;
    }
    int failed;
    if (end == start) {
        failed = count > PY_SSIZE_T_MAX - b->blank_rows;
        if (failed) {
            PyErr_SetString(PyExc_OverflowError, "too many blank rows");
        }
        else {
            b->blank_rows += count;
        }
    }
    else if (b->compression == 2) {
        failed = flush_blank_rows(b) < 0
                 || put_packbits_rows(b, data + start, end - start, count) < 0;
    }
    else {
        failed = flush_blank_rows(b) < 0
                 || put_delta_rows(b, data + start, end - start, count) < 0;
        if (!failed) {
            take_seed(b, &view, start, end - start);
            return 0;
        }
    }
    PyBuffer_Release(&view);
    return failed ? -1 : 0;
}

/* (out, blank_rows, seed) once every row is written; NULL on an error. */
static PyObject *
band_result(PclBand *b, PyObject *seed_given)
{
    if (_PyBytes_Resize(&b->out, b->used) < 0) {
        return NULL;
    }
    PyObject *seed = b->seed_changed
        ? PyBytes_FromStringAndSize((const char *)b->seed, b->seed_len) : Py_NewRef(seed_given);
    if (seed == NULL) {
        return NULL;
    }
    return Py_BuildValue("(OnN)", b->out, b->blank_rows, seed);
}

static int
parse_band_args(PyObject *const *args, PclBand *b)
{
    if (as_ssize(args[1], &b->crop) || as_ssize(args[2], &b->compression)
        || as_ssize(args[3], &b->blank_rows)) {
        return -1;
    }
    if (b->crop < 0 || (b->compression != 2 && b->compression != 3) || b->blank_rows < 0) {
        PyErr_SetString(PyExc_ValueError, "need crop >= 0, compression 2 or 3, blank_rows >= 0");
        return -1;
    }
    if (PyObject_GetBuffer(args[4], &b->seed_view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    b->seed = (const unsigned char *)b->seed_view.buf;
    b->seed_len = b->seed_view.len;
    return 0;
}

PyDoc_STRVAR(pcl_band_doc,
"pcl_band(rows, crop, compression, blank_rows, seed) -> (out, blank_rows, seed)\n\n"
"PCL raster transfers (compression mode 2 or 3) for a band of (line, count) rows: each line\n"
"cropped by `crop` bytes and stripped of trailing zero bytes, blank rows counted into ESC*b#Y.\n"
"`blank_rows` and `seed` are carried from one band to the next.");

static PyObject *
pcl_band(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "pcl_band() takes 5 arguments");
        return NULL;
    }
    PclBand b;
    memset(&b, 0, sizeof b);
    if (parse_band_args(args, &b) < 0) {
        return NULL;
    }
    PyObject *rows = PySequence_Fast(args[0], "pcl_band() needs an iterable of rows");
    b.out = rows != NULL ? PyBytes_FromStringAndSize(NULL, 8192) : NULL;
    int failed = b.out == NULL;
    /* The size is read again each time: the loop runs no Python code, but stays safe if it did. */
    for (Py_ssize_t i = 0; !failed && i < PySequence_Fast_GET_SIZE(rows); i++) {
        PyObject *row = Py_NewRef(PySequence_Fast_GET_ITEM(rows, i));
        failed = band_row(&b, row) < 0;
        Py_DECREF(row);
    }
    PyObject *result = failed ? NULL : band_result(&b, args[4]);
    Py_XDECREF(rows);
    Py_XDECREF(b.out);
    drop_seed(&b);
    return result;
}

/* ---- Ordered dither (drivers/filters/convert.py Ditherer) -------------------------------- */

#define DITHER_SIZE 16

/* One gray line to 1-bit, 1 = ink where the gray is below the threshold of its column;
 * `thresholds` is the matrix row for this line. Padding bits of the last byte stay 0. */
static void
dither_row(unsigned char *out, const unsigned char *gray, Py_ssize_t width,
           const unsigned char *thresholds)
{
    Py_ssize_t whole = width / 8;
    for (Py_ssize_t j = 0; j < whole; j++) {
        const unsigned char *g = gray + 8 * j;
        const unsigned char *t = thresholds + 8 * (j & 1);  /* DITHER_SIZE is two bytes wide */
        uint64_t pixels;
        memcpy(&pixels, g, sizeof pixels);
        if (pixels == UINT64_MAX) {
            out[j] = 0;  /* white: no threshold is above 255 */
            continue;
        }
        out[j] = (unsigned char)((g[0] < t[0]) << 7 | (g[1] < t[1]) << 6 | (g[2] < t[2]) << 5
                                 | (g[3] < t[3]) << 4 | (g[4] < t[4]) << 3 | (g[5] < t[5]) << 2
                                 | (g[6] < t[6]) << 1 | (g[7] < t[7]));
    }
    if (width % 8 != 0) {
        unsigned char last = 0;
        for (Py_ssize_t x = whole * 8; x < width; x++) {
            last |= (unsigned char)((gray[x] < thresholds[x % DITHER_SIZE]) << (7 - x % 8));
        }
        out[whole] = last;
    }
}

/* The (bits, 1) row for one gray line; NULL on an error. */
static PyObject *
dither_line(PyObject *line, Py_ssize_t width, const unsigned char *thresholds, PyObject *one)
{
    Py_buffer view;
    if (PyObject_GetBuffer(line, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *bits = NULL, *row = NULL;
    if (view.len != width) {
        PyErr_Format(PyExc_ValueError, "a line of %zd bytes in a band %zd pixels wide",
                     view.len, width);
    }
    else {
        bits = PyBytes_FromStringAndSize(NULL, (width + 7) / 8);
    }
    if (bits != NULL) {
        dither_row((unsigned char *)PyBytes_AS_STRING(bits), view.buf, width, thresholds);
        row = PyTuple_Pack(2, bits, one);
        Py_DECREF(bits);
    }
    PyBuffer_Release(&view);
    return row;
}

PyDoc_STRVAR(ordered_dither_doc,
"ordered_dither(lines, width, y, thresholds) -> [(bits, 1), ...]\n\n"
"8-bit gray lines of `width` pixels, the first being line `y` of the page, to 1-bit rows\n"
"(1 = ink where gray < threshold). `thresholds` is the 16x16 matrix, row after row; line y\n"
"uses its row y % 16, pixel x its column x % 16.");

static PyObject *
ordered_dither(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_ssize_t width, y;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "ordered_dither() takes 4 arguments");
        return NULL;
    }
    if (as_ssize(args[1], &width) || as_ssize(args[2], &y)) {
        return NULL;
    }
    if (width < 0 || width > PY_SSIZE_T_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= width < 2**62");
        return NULL;
    }
    Py_buffer matrix;
    if (PyObject_GetBuffer(args[3], &matrix, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *lines = NULL, *rows = NULL, *one = NULL;
    if (matrix.len != DITHER_SIZE * DITHER_SIZE) {
        PyErr_SetString(PyExc_ValueError, "thresholds must be 16 rows of 16 bytes");
    }
    else {
        lines = PySequence_Fast(args[0], "ordered_dither() needs an iterable of lines");
    }
    if (lines != NULL) {
        rows = PyList_New(0);
        one = PyLong_FromLong(1);
    }
    Py_ssize_t phase = (y % DITHER_SIZE + DITHER_SIZE) % DITHER_SIZE;
    for (Py_ssize_t i = 0; rows != NULL && one != NULL && i < PySequence_Fast_GET_SIZE(lines);
         i++) {
        const unsigned char *thresholds = (const unsigned char *)matrix.buf
            + DITHER_SIZE * ((phase + i) % DITHER_SIZE);
        PyObject *line = Py_NewRef(PySequence_Fast_GET_ITEM(lines, i));
        PyObject *row = dither_line(line, width, thresholds, one);
        Py_DECREF(line);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_CLEAR(rows);
        }
        Py_XDECREF(row);
    }
    if (one == NULL) {
        Py_CLEAR(rows);
    }
    Py_XDECREF(one);
    Py_XDECREF(lines);
    PyBuffer_Release(&matrix);
    return rows;
}

/* ---- module ------------------------------------------------------------------------------ */

PyDoc_STRVAR(set_line_overflow_doc,
"set_line_overflow(cls)\n\nThe exception class decode_line raises for bad line lengths.");

static PyObject *
set_line_overflow(PyObject *module, PyObject *cls)
{
    (void)module;
    if (!PyExceptionClass_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "set_line_overflow() needs an exception class");
        return NULL;
    }
    Py_INCREF(cls);
    Py_XSETREF(line_overflow_class, cls);
    Py_RETURN_NONE;
}

static PyMethodDef codec_methods[] = {
    {"decode_line", (PyCFunction)(void (*)(void))decode_line, METH_FASTCALL, decode_line_doc},
    {"decode_band", (PyCFunction)(void (*)(void))decode_band, METH_FASTCALL, decode_band_doc},
    {"packbits", packbits, METH_VARARGS, packbits_doc},
    {"packbits_bilevel", packbits_bilevel, METH_VARARGS, packbits_bilevel_doc},
    {"delta_row", delta_row, METH_VARARGS, delta_row_doc},
    {"pcl_band", (PyCFunction)(void (*)(void))pcl_band, METH_FASTCALL, pcl_band_doc},
    {"ordered_dither", (PyCFunction)(void (*)(void))ordered_dither, METH_FASTCALL,
     ordered_dither_doc},
    {"set_line_overflow", set_line_overflow, METH_O, set_line_overflow_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef codec_module = {
    PyModuleDef_HEAD_INIT,
    "drivers.filters._rastercodec",
    "C versions of the raster hot loops; drivers.model.accel chooses between them and the\n"
    "pure-Python references.",
    -1,
    codec_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__rastercodec(void)
{
    return PyModule_Create(&codec_module);
}
