// RealPython "Getting Started with Django Channels": the <script> block of
// example/templates/example/user_list.html (realpython/django-example-channels @ fd9c97c),
// verbatim below these comments. It is a file rather than inline because the site's
// Content-Security-Policy (default-src 'self') blocks inline scripts. It needs jQuery 3.1.1
// (/static/vendor/jquery-3.1.1.min.js), loaded before it as in the tutorial's _base.html.
    var socket = new WebSocket('ws://' + window.location.host + '/users/');

    socket.onopen = function open() {
      console.log('WebSockets connection created.');
    };

    socket.onmessage = function message(event) {
      var data = JSON.parse(event.data);
      // NOTE: We escape JavaScript to prevent XSS attacks.
      var username = encodeURI(data['username']);
      var user = $('li').filter(function () {
        return $(this).data('username') == username;
      });

      if (data['is_logged_in']) {
        user.html(username + ': Online');
      }
      else {
        user.html(username + ': Offline');
      }
    };

    if (socket.readyState == WebSocket.OPEN) {
      socket.onopen();
    }
