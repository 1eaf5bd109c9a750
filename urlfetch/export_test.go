package urlfetch

// LimitError lets the tests read the fields of a size limit's error.
type LimitError = limitError
