/* The raster hot loops in C: PWG/URF line decoding, PackBits and PCL delta-row encoding.
 *
 * Each function is the exact equivalent of its pure-Python reference (drivers/filters/raster.py
 * decode_line, drivers/filters/packbits.py packbits and packbits_bilevel, drivers/languages/pcl.py
 * _delta_row), which stays the specification: same output bytes, same exceptions. The input
 * comes from the network, so every read is checked against the buffer and every write against
 * the output allocated for it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
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

static unsigned char *
put_literal(unsigned char *out, const unsigned char *start, Py_ssize_t count)
{
    while (count > 0) {
        Py_ssize_t take = count < 128 ? count : 128;
        *out++ = (unsigned char)(take - 1);
        memcpy(out, start, (size_t)take);
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

/* Runs of 3 or more equal bytes (bilevel: only 0x00 and 0xFF) are repeats; the rest literal,
 * which is what the reference's leftmost-longest regular expression finds. */
static PyObject *
encode_packbits(PyObject *args, int bilevel)
{
    Py_buffer view;
    if (!PyArg_ParseTuple(args, bilevel ? "y*:packbits_bilevel" : "y*:packbits", &view)) {
        return NULL;
    }
    const unsigned char *in = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    /* Worst case: all literal, one head byte per 128. */
    PyObject *result = PyBytes_FromStringAndSize(NULL, n + n / 128 + 2);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char *begin = out;
    Py_ssize_t literal = 0, i = 0;
    while (i + 2 < n) {
        unsigned char value = in[i];
        if (value != in[i + 1] || value != in[i + 2]
            || (bilevel && value != 0 && value != 0xFF)) {
            i++;
            continue;
        }
        Py_ssize_t end = i + 3;
        while (end < n && in[end] == value) {
            end++;
        }
        out = put_literal(out, in + literal, i - literal);
        out = put_run(out, value, end - i);
        i = literal = end;
    }
    out = put_literal(out, in + literal, n - literal);
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&result, out - begin) < 0) {
        return NULL;
    }
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
    Py_ssize_t width = row.len > seed.len ? row.len : seed.len;
    PyObject *result = NULL;
    /* Per changed byte at most a command and the byte; offsets add one byte per 255 skipped
     * plus one per stretch, and stretches are at least 4 bytes apart. */
    if (width <= PY_SSIZE_T_MAX / 4) {
        result = PyBytes_FromStringAndSize(NULL, 3 * width + 16);
    }
    else {
        PyErr_NoMemory();
    }
    if (result != NULL) {
        unsigned char *begin = (unsigned char *)PyBytes_AS_STRING(result);
        unsigned char *out = begin;
        Py_ssize_t pos = 0, i = 0;
        while (i < width) {
            if (!differs(&p, i)) {
                i++;
                continue;
            }
            Py_ssize_t end = changed_end(&p, i, width);
            out = put_changes(out, &p, i, end, &pos);
            i = end;
        }
        if (_PyBytes_Resize(&result, out - begin) < 0) {
            result = NULL;
        }
    }
    PyBuffer_Release(&row);
    PyBuffer_Release(&seed);
    return result;
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
    {"set_line_overflow", set_line_overflow, METH_O, set_line_overflow_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef codec_module = {
    PyModuleDef_HEAD_INIT,
    "drivers.filters._rastercodec",
    "C versions of the raster hot loops; drivers.filters.accel chooses between them and the\n"
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
